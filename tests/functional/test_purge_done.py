"""DONE VMs with a real oned (issue 18): pages of them through pyone, and `onedb purge-done`."""

from __future__ import annotations

import pyone
import pytest

pytestmark = pytest.mark.functional

VM = "NAME = v\nCPU = 0.1\nMEMORY = 16\n"
DONE, ANY, NOT_DONE = 6, -2, -1
FUTURE = "2037-12-31"


def ids(pool: object) -> list[int]:
    return [vm.ID for vm in pool.VM]  # type: ignore[attr-defined]


def vms_with_done(admin: pyone.OneServer, count: int, done: range) -> None:
    """``count`` VMs (ids 0..count-1) of which those in ``done`` are finalized: DONE."""
    for _ in range(count):
        admin.vm.allocate(VM)
    for vid in done:
        admin.vm.action("finalize", vid)


def test_done_vms_are_listed_by_pages_and_id_ranges(admin: pyone.OneServer) -> None:
    """The modern flags through pyone: (offset, -size) pages and id ranges, state 6 or -2."""
    vms_with_done(admin, 6, range(4))
    assert ids(admin.vmpool.info(-2, 1, -2, DONE)) == [1, 2]
    assert ids(admin.vmpool.info(-2, 3, -5, DONE)) == [3]
    assert ids(admin.vmpool.info(-2, 0, -3, ANY)) == [0, 1, 2]
    assert ids(admin.vmpool.info(-2, 3, 4, ANY)) == [3, 4]
    assert ids(admin.vmpool.info(-2, 2, -1, ANY)) == [2, 3, 4, 5]
    assert ids(admin.vmpool.info(-2, -1, -1, NOT_DONE)) == [4, 5]
    page = admin.vmpool.infoextended(-2, 2, -2, DONE)
    assert [vm.STATE for vm in page.VM] == [DONE, DONE]


def test_onedb_purge_done_removes_old_done_vms_whose_ids_stay_used(oned, admin) -> None:
    """A dry run counts, a purge of VMs older than a day removes none, a purge before a
    future date removes every DONE VM (the last ones created among them), and after a restart
    the next VM still gets a new id."""
    vms_with_done(admin, 6, range(2, 6))
    dry = oned.run_cli("onedb", "purge-done", "--before", FUTURE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("4 DONE VMs ended before 2037-12-31 00:00:00 UTC (dry run")
    assert ids(admin.vmpool.info(-2, -1, -1, DONE)) == [2, 3, 4, 5]
    young = oned.run_cli("onedb", "purge-done", "--older-than", "1")
    assert young.stdout.startswith("Purged 0 DONE VMs"), young.stderr
    purge = oned.run_cli("onedb", "purge-done", "--before", FUTURE)
    assert purge.returncode == 0, purge.stderr
    assert purge.stdout == "Purged 4 DONE VMs that ended before 2037-12-31 00:00:00 UTC\n"
    assert ids(admin.vmpool.info(-2, -1, -1, ANY)) == [0, 1]
    with pytest.raises(pyone.OneNoExistsException):
        admin.vm.info(5)
    assert "Purged 4 DONE VMs that ended before 2037-12-31" in oned.log
    oned.stop()
    oned.start()
    again = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert again.vm.allocate(VM) == 6


def test_only_oneadmin_may_purge_and_bad_dates_are_refused(oned, admin) -> None:
    admin.user.allocate("dan", "pw")
    dan = oned.location / "dan_auth"
    dan.write_text("dan:pw\n")
    refused = oned.run_cli(
        "onedb", "purge-done", "--before", FUTURE, env={**oned.env, "ONE_AUTH": str(dan)}
    )
    assert refused.returncode == 255
    assert "not authorized" in refused.stderr
    bad = oned.run_cli("onedb", "purge-done", "--before", "yesterday")
    assert bad.returncode == 255
    assert "--before 'yesterday': a date YYYY-MM-DD" in bad.stderr
