"""The scheduler against a real oned: the pools it reads, its choices, its reasons, and its
deployments of every user's VMs (deploy is oneadmin's; mm_sched runs as oneadmin).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pyone
import pytest

from oned.client import OneClient
from scheduler.placement import Limits, place
from scheduler.pools import fetch_hosts, fetch_pending_xml, parse_pending
from tests.functional.conftest import as_user

pytestmark = pytest.mark.functional


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")


@pytest.fixture
def cloud(oned, admin):
    """Two im_dummy hosts, monitored; VM 0 wants host02, VM 1 wants a host that is not there."""
    for name in ("host01", "host02"):
        admin.host.allocate(name, "im_dummy", "vmm_dummy", -1)
    wait_for(lambda: all(h.STATE == 2 for h in admin.hostpool.info().HOST))
    admin.vm.allocate('NAME = a\nCPU = 0.5\nMEMORY = 128\nREQUIREMENTS = "HOSTNAME = \\"host02\\""')
    admin.vm.allocate('NAME = b\nCPU = 0.5\nMEMORY = 128\nREQUIREMENTS = "HOSTNAME = \\"host09\\""')
    return oned


def test_the_pools_of_a_real_oned_are_read_and_placed_by_requirements(cloud):
    """HostView and PendingVm come from oned's own XML; the round picks host02 and explains VM 1."""
    with OneClient(cloud.endpoint, "oneadmin:onecloud") as client:
        hosts = fetch_hosts(client)
        vms = parse_pending(fetch_pending_xml(client))
    assert [(h.name, h.max_cpu, h.attrs["HYPERVISOR"]) for h in hosts] == [
        ("host01", 800, "dummy"),
        ("host02", 800, "dummy"),
    ]
    assert [(v.id, v.cpu, v.memory, v.requirements) for v in vms] == [
        (0, 0.5, 128, 'HOSTNAME = "host02"'),
        (1, 0.5, 128, 'HOSTNAME = "host09"'),
    ]
    plan = place(vms, hosts, Limits(), time.time())
    assert [(p.vm, p.host_name) for p in plan.placements] == [(0, "host02")]
    assert plan.reasons == {1: 'no host satisfies REQUIREMENTS HOSTNAME = "host09"'}


def test_mm_sched_chooses_host02_and_logs_why_the_other_vm_waits(cloud):
    """The real process against the real oned: its choice and its reason are in sched.log."""
    proc = subprocess.Popen([sys.executable, "-m", "scheduler"], env=cloud.env)
    log_file = cloud.location / "var" / "sched.log"
    try:
        wait_for(lambda: log_file.exists() and "Round:" in log_file.read_text())
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    log = log_file.read_text()
    assert re.search(r"VM 0(:| dispatched to host) host02", log), log
    assert 'VM 1 waits: no host satisfies REQUIREMENTS HOSTNAME = "host09"' in log


def test_oned_refuses_a_vm_whose_requirements_do_not_parse(admin):
    """one.vm.allocate names the attribute and the column; nothing is stored."""
    with pytest.raises(pyone.OneException, match=r"syntax error at column 12: unexpected '@'"):
        admin.vm.allocate('NAME = bad\nMEMORY = 64\nREQUIREMENTS = "HOSTNAME = @"')
    with pytest.raises(pyone.OneException, match=r'RANK = "FREECPU \+": syntax error'):
        admin.vm.allocate('NAME = bad\nMEMORY = 64\nRANK = "FREECPU +"')
    assert admin.vmpool.info(-2, -1, -1, -1).VM == []


def run_mm_sched(oned, env: dict[str, str], until) -> str:
    """mm_sched with ``env`` until ``until()`` holds; sched.log's text."""
    proc = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env)
    log_file = oned.location / "var" / "sched.log"
    try:
        wait_for(until)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    return log_file.read_text()


def helens_vm(oned, admin) -> tuple[pyone.OneServer, int]:
    """A monitored host, user helen, and a PENDING VM of hers."""
    admin.host.allocate("host01", "im_dummy", "vmm_dummy", -1)
    wait_for(lambda: admin.host.info(0).STATE == 2)
    admin.user.allocate("helen", "mypass", "core", [])
    helen = as_user(oned, "helen:mypass")
    return helen, helen.vm.allocate("NAME = hers\nCPU = 0.5\nMEMORY = 128")


def test_mm_sched_deploys_a_regular_users_vm_as_oneadmin(oned, admin):
    """Issue 10 finding 3: deploy became oneadmin's; mm_sched, run with oneadmin's ONE_AUTH as
    `one start` does, still places and deploys the VMs of every user."""
    helen, vid = helens_vm(oned, admin)
    with pytest.raises(pyone.OneAuthorizationException, match="not authorized"):
        helen.vm.deploy(vid, 0)
    assert oned.auth_file.read_text().startswith("oneadmin:")
    log = run_mm_sched(oned, oned.env, lambda: helen.vm.info(vid).STATE == 3)
    assert f"VM {vid} dispatched to host host01" in log
    wait_for(lambda: helen.vm.info(vid).LCM_STATE == 3)
    assert helen.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].HOSTNAME == "host01"


def test_mm_sched_run_as_a_regular_user_deploys_nothing_and_says_why(oned, admin, tmp_path):
    """mm_sched with a user's ONE_AUTH: oned refuses its deploy (0x200), the log says so."""
    helen, vid = helens_vm(oned, admin)
    auth = tmp_path / "helen_auth"
    auth.write_text("helen:mypass\n")
    log_file = oned.location / "var" / "sched.log"
    log = run_mm_sched(
        oned,
        {**oned.env, "ONE_AUTH": str(auth)},
        lambda: log_file.exists() and "deploy refused" in log_file.read_text(),
    )
    assert f"[one.vm.deploy] User [1] not authorized to perform ADMIN on VM [{vid}]" in log
    assert helen.vm.info(vid).STATE == 1


MM_SCHED = Path(sys.executable).parent / "mm_sched"  # the installed console script
FLAGS = ("--help", "-c", "-p", "-e", "-t", "-m", "-d", "-h", "--live-interval")


def test_mm_sched_help_lists_every_flag_and_the_readme_says_how():
    """`mm_sched --help` (and `-h` alone: `-h N` is MAX_HOST) prints every flag and exits 0; a
    wrong flag is one line pointing at --help; the README names `mm_sched --help`."""
    for argv in (["--help"], ["-h"]):
        shown = subprocess.run([MM_SCHED, *argv], capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert all(re.search(rf"(^|[\s,\[]){re.escape(f)}\b", shown.stdout) for f in FLAGS)
        assert "MAX_HOST" in shown.stdout and "SCHED_INTERVAL" in shown.stdout
    wrong = subprocess.run([MM_SCHED, "--bogus"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == [
        "mm_sched: unrecognized arguments: --bogus (mm_sched --help lists the flags)"
    ]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`mm_sched --help`" in readme and "`mm_sched -h` lists" not in readme
