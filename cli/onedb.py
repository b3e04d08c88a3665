"""onedb: the operator's work on oned's database, done by oned itself (issue 18).

NOTE: OpenNebula's ``onedb purge-done --start/--end`` opens the database beside oned; here
oned is the only writer of its database, so ``onedb purge-done`` asks it over XML-RPC
(``one.vmpool.purgedone``, oneadmin only) and oned keeps serving while it purges.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from cli.common import Command, Context, Flag, UsageError, run_cli

PROG = "onedb"
DESCRIPTION = "Maintain oned's database through oned (oneadmin only)."
PER_CALL = 10_000  # VMs a call: oned answers within seconds, and we can say how far it got
MAX_DAYS = 100 * 366
LAST_EPOCH = 2**31 - 1  # NOTE: OpenNebula's XML-RPC integers are 32-bit
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")

PURGE_DETAILS = """\
A VM that reached DONE stays in the database with its history (one.vm.info and
one.vmpool.info with state -2 or 6 still show it) until it is purged. purge-done
removes the DONE VMs that ended before the time given, the oldest first, with their
history, in short transactions: oned keeps serving meanwhile, and prints how far it got.
The ids of purged VMs are never given to new VMs.

examples:
  onedb purge-done --older-than 90 --dry-run   how many VMs ended over 90 days ago
  onedb purge-done --older-than 90             remove them
  onedb purge-done --before 2026-01-01         remove those that ended before 2026 (UTC)"""


def parse_before(opts: argparse.Namespace, now: float) -> int:
    """The epoch second of ``--older-than DAYS`` or ``--before DATE`` (UTC); exactly one."""
    if (opts.older_than is None) == (opts.before is None):
        raise UsageError(f"{PROG} purge-done: give one of --older-than DAYS or --before DATE")
    if opts.older_than is not None:
        return int(now - _days(opts.older_than) * 86_400)
    return _date(opts.before)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not 0 <= days <= MAX_DAYS:
        raise UsageError(f"--older-than {text[:40]!r}: a number of days from 0 to {MAX_DAYS}")
    return days


def _date(text: str) -> int:
    for fmt in DATE_FORMATS:
        try:
            when = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        if not 0 < when.timestamp() <= LAST_EPOCH:
            break
        return int(when.timestamp())
    raise UsageError(
        f"--before {text[:40]!r}: a date YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC), "
        "from 1970 to 2038-01-19"
    )


def purge_done(ctx: Context, opts: argparse.Namespace) -> int:
    before = parse_before(opts, time.time())
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(before))
    if opts.dry_run:
        count = ctx.call("one.vmpool.purgedone", before, True)
        ctx.print(f"{count} DONE VMs ended before {when} (dry run: none removed)")
        return 0
    total = 0
    while True:
        purged = ctx.call("one.vmpool.purgedone", before, False, PER_CALL)
        total += purged
        if purged < PER_CALL:
            break
        ctx.write_now(f"purged {total} DONE VMs so far\n")
    ctx.print(f"Purged {total} DONE VMs that ended before {when}")
    return 0


COMMANDS = (
    Command(
        "purge-done",
        "Removes the DONE VMs that ended before a time, with their history",
        purge_done,
        flags=(
            Flag(
                ("--older-than",),
                "[--older-than <days>]",
                {"dest": "older_than", "metavar": "DAYS", "help": "ended over DAYS days ago"},
            ),
            Flag(
                ("--before",),
                "[--before <date>]",
                {"metavar": "DATE", "help": "ended before DATE: YYYY-MM-DD[THH:MM[:SS]], UTC"},
            ),
            Flag(
                ("--dry-run",),
                "[--dry-run]",
                {"action": "store_true", "help": "only count them"},
            ),
        ),
        details=PURGE_DETAILS,
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``onedb``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv)
