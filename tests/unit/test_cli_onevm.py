"""onevm: exact listing and show output from literal oned XML, and each command's calls."""

import io
import time
from pathlib import Path

import pytest

from cli import onevm, table
from cli.common import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
STIME = 1795262190  # the STIME of VM 1 in the fixtures


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


class FakeOned:
    """Answers each method from a table (a value, or a function of the params); records calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, *params):
        self.calls.append((method, *params))
        answer = self.answers[method]
        return answer(*params) if callable(answer) else answer


def run(argv, answers=None):
    fake = FakeOned(answers or {})
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(onevm.PROG, onevm.DESCRIPTION, onevm.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


# The workshop's (003) `onevm list`, whitespace as its text extraction left it.
SEED_LIST = [
    "ID      USER      NAME  STAT  CPU    MEM      HOSTNAME      TIME",
    "1  oneadmin  ttylinux  pend   0      0      00 00:00:28",
]
HEADER = "  ID     USER     NAME STAT CPU     MEM        HOSTNAME        TIME"


def test_list_of_a_pending_vm_matches_the_workshop():
    lines = onevm.list_lines(fixture("one.vmpool.info_one_pending.xml"), now=STIME + 28)
    assert lines == [HEADER, "   1 oneadmin ttylinux pend   0       0                 00 00:00:28"]
    assert [line.split() for line in lines] == [s.split() for s in SEED_LIST]


def test_a_running_vm_shows_the_host_of_its_last_history_record():
    lines = onevm.list_lines(fixture("one.vmpool.info_pending_and_running.xml"), now=STIME + 28)
    assert lines[2] == "   2    helen    one-2 runn   2   65536          host01 00 00:01:58"


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (None, (-2, None)),
        ("a", (-2, None)),
        ("all", (-2, None)),
        ("m", (-1, None)),
        ("mine", (-1, None)),
        ("3", (3, None)),
        ("helen", (-2, "helen")),
    ],
)
def test_list_filter_words(arg, expected):
    assert onevm.pool_filter(arg) == expected


def test_list_command_asks_for_all_vms_by_default(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: STIME + 28)
    pool = fixture("one.vmpool.info_one_pending.xml")
    rc, out, _, calls = run(["list"], {"one.vmpool.info": pool})
    assert rc == 0
    assert out.splitlines() == onevm.list_lines(pool, now=STIME + 28)
    assert calls == [("one.vmpool.info", -2, -1, -1, -1)]


def test_list_mine_and_list_by_uid_pass_the_filter_flag():
    pool = {"one.vmpool.info": "<VM_POOL/>"}
    assert run(["list", "m"], pool)[3] == [("one.vmpool.info", -1, -1, -1, -1)]
    assert run(["list", "2"], pool)[3] == [("one.vmpool.info", 2, -1, -1, -1)]


def test_list_by_user_name_filters_on_the_client():
    pool = {"one.vmpool.info": fixture("one.vmpool.info_pending_and_running.xml")}
    _, out, _, _ = run(["list", "helen", "--list", "id,user,name"], pool)
    assert out.splitlines() == ["  ID     USER     NAME", "   2    helen    one-2"]


SHOW_RUNNING = [
    "VIRTUAL MACHINE 2 INFORMATION".ljust(80),
    "ID             : 2                   ",
    "NAME           : one-2               ",
    "STATE          : ACTIVE              ",
    "LCM_STATE      : RUNNING             ",
    "START TIME     : 11/21 11:55:00      ",
    "END TIME       : -                   ",
    "DEPLOY ID:     : one-2               ",
    "",
    "VIRTUAL MACHINE TEMPLATE".ljust(80),
    "CPU=0.1",
    "DISK=[",
    "  READONLY=no,",
    "  SOURCE=/srv/cloud/images/ttylinux/ttylinux.img,",
    "  TARGET=hda ]",
    "FEATURES=[",
    "  ACPI=no ]",
    "MEMORY=64",
    "NAME=one-2",
    "VMID=2",
]


def test_show_prints_the_fields_then_the_template(utc):
    assert onevm.show_lines(fixture("one.vm.info_running.xml")) == SHOW_RUNNING


def test_show_of_a_pending_vm_has_dashes_for_deploy_id(utc):
    lines = onevm.show_lines(fixture("one.vm.info_pending.xml"))
    assert lines[3:8] == [
        "STATE          : PENDING             ",
        "LCM_STATE      : LCM_INIT            ",
        "START TIME     : 11/21 11:56:30      ",
        "END TIME       : -                   ",
        "DEPLOY ID:     : -                   ",
    ]


def test_show_command_resolves_names_and_prints_raw_xml_with_x():
    text = fixture("one.vm.info_running.xml")
    answers = {
        "one.vmpool.info": fixture("one.vmpool.info_pending_and_running.xml"),
        "one.vm.info": text,
    }
    rc, out, _, calls = run(["show", "-x", "one-2"], answers)
    assert (rc, out) == (0, text + "\n")
    assert calls == [("one.vmpool.info", -2, -1, -1, -1), ("one.vm.info", 2)]
    assert run(["show", "nope"], answers)[2] == 'Error: VM "nope" not found\n'


def test_create_sends_the_template_file_and_prints_the_id_with_or_without_v(tmp_path):
    path = tmp_path / "ttylinux.one"
    path.write_text("NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\n")
    rc, out, _, calls = run(["create", "-v", str(path)], {"one.vm.allocate": 1})
    assert (rc, out) == (0, "ID: 1\n")
    assert calls == [("one.vm.allocate", path.read_text())]
    assert run(["create", str(path)], {"one.vm.allocate": 1})[1] == "ID: 1\n"


def test_create_with_an_unreadable_file_says_which(tmp_path):
    rc, _, err, calls = run(["create", str(tmp_path / "none.one")])
    assert rc == 255 and calls == []
    assert (
        err
        == f"Error: cannot read template file {tmp_path / 'none.one'}: No such file or directory\n"
    )


def test_top_relists_the_pool(monkeypatch):
    def two_rounds(render, write, delay):
        assert delay == 0.5
        return table.top(render, write, delay, sleep=lambda _d: None, rounds=2)

    monkeypatch.setattr(onevm, "top", two_rounds)
    rc, out, _, calls = run(["top", "-d", "0.5", "m"], {"one.vmpool.info": "<VM_POOL/>"})
    assert rc == 0 and out.count(table.CLEAR_SCREEN) == 2
    assert calls == [("one.vmpool.info", -1, -1, -1, -1)] * 2


def test_help_lists_every_command(capsys):
    assert onevm.main(["--help"]) == 0
    text = capsys.readouterr().out
    for usage in (
        "create [--hold] <template-file>",
        "recover --success|--failure|--retry|--delete <name|id>...",
        "list [--list <col,...>] [<a|all|m|mine|uid|username>]",
        "show <name|id>...",
        "top [--list <col,...>] [--delay <seconds>] [<a|all|m|mine|uid|username>]",
    ):
        assert f"  {usage}\n" in text
