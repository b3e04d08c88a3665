"""onedb purge-done: the time it asks oned for, its progress lines, and bad dates refused."""

import argparse
import io

import pytest

from cli import onedb
from cli.common import run_cli


class FakeOned:
    """one.vmpool.purgedone answers from a list, in turn; records the calls."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def call(self, method, *params):
        self.calls.append((method, *params))
        return self.answers.pop(0)


def run(argv, answers=()):
    fake = FakeOned(answers)
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(onedb.PROG, onedb.DESCRIPTION, onedb.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


def test_purge_calls_oned_until_a_call_removes_fewer_than_it_may_and_says_how_far_it_got():
    full = onedb.PER_CALL
    rc, out, err, calls = run(["purge-done", "--before", "2026-01-01"], [full, full, 7])
    assert (rc, err) == (0, "")
    before = 1_767_225_600  # 2026-01-01 00:00:00 UTC
    assert calls == [("one.vmpool.purgedone", before, False, full)] * 3
    assert out.splitlines() == [
        f"purged {full} DONE VMs so far",
        f"purged {2 * full} DONE VMs so far",
        f"Purged {2 * full + 7} DONE VMs that ended before 2026-01-01 00:00:00 UTC",
    ]


def test_a_dry_run_only_counts():
    rc, out, _, calls = run(["purge-done", "--before", "2026-01-01T12:30", "--dry-run"], [42])
    assert rc == 0
    assert calls == [("one.vmpool.purgedone", 1_767_270_600, True)]
    assert out == "42 DONE VMs ended before 2026-01-01 12:30:00 UTC (dry run: none removed)\n"


def test_older_than_counts_days_back_from_now():
    opts = argparse.Namespace(older_than="1.5", before=None)
    assert onedb.parse_before(opts, now=1_000_000) == 1_000_000 - 129_600


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--older-than", "-1"], "--older-than '-1': a number of days"),
        (["--older-than", "inf"], "--older-than 'inf': a number of days"),
        (["--before", "2026-02-30"], "--before '2026-02-30': a date"),
        (["--before", "2040-01-01"], "from 1970 to 2038-01-19"),
        (["--before", "2026-01-01", "--older-than", "3"], "give one of --older-than"),
        ([], "give one of --older-than"),
    ],
)
def test_bad_times_are_refused_before_oned_is_called(argv, says):
    rc, _, err, calls = run(["purge-done", *argv])
    assert rc == 255
    assert says in err
    assert calls == []
