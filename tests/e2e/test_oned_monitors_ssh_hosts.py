"""The seed's onehost walk-through on real SSH hosts: oned, one_im_ssh kvm, namespace hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def this_machine() -> tuple[int, int]:
    """(TOTALCPU, TOTALMEMORY in KB) the probes must report: the hosts share this kernel."""
    lines = Path("/proc/meminfo").read_text().splitlines()
    meminfo = dict(line.split(":", 1) for line in lines)
    return (os.cpu_count() or 1) * 100, int(meminfo["MemTotal"].split()[0])


@pytest.fixture
def oned(tmp_path):
    process = OnedProcess(tmp_path / "one").set(HOST_MONITORING_INTERVAL=5)
    process.start()
    yield process
    process.stop()


def test_onehost_create_shows_real_cpu_and_memory_within_one_interval(oned, test_hosts):
    """onehost create <host> im_kvm vmm_kvm tm_ssh, then onehost list: real figures."""
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    for _, address in test_hosts:
        assert (
            oned.run_cli("onehost", "create", address, "im_kvm", "vmm_kvm", "tm_ssh").returncode
            == 0
        )
    wait_for(lambda: all(one.host.info(h).STATE == 2 for h in range(len(test_hosts))), 5 + 20)
    cpu, memory = this_machine()
    for hid in range(len(test_hosts)):
        host = one.host.info(hid)
        assert cpu == host.HOST_SHARE.MAX_CPU
        assert abs(host.HOST_SHARE.MAX_MEM - memory) < memory * 0.05
        assert host.TEMPLATE["HYPERVISOR"] == "kvm" and host.TEMPLATE["ARCH"]
    rows = [r.split() for r in oned.run_cli("onehost", "list").stdout.splitlines()[1:]]
    assert [(r[1], r[3], r[-1]) for r in rows] == [(a, str(cpu), "on") for _, a in test_hosts]


def test_a_frozen_host_goes_to_error_without_delaying_the_others(oned, test_hosts):
    """One host's sshd hangs: the others stay monitored every interval; that one ends in err."""
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    for _, address in test_hosts:
        one.host.allocate(address, "im_kvm", "vmm_kvm", "tm_ssh")
    wait_for(lambda: all(one.host.info(h).STATE == 2 for h in range(len(test_hosts))), 25)
    frozen_name, _ = test_hosts[0]
    test_hosts.freeze(frozen_name)
    try:
        wait_for(lambda: one.host.info(0).STATE in (1, 3), 5 + 10)  # its monitoring hangs
        before = [_last_mon(one, h) for h in (1, 2)]
        wait_for(
            lambda: all(_last_mon(one, h) > b for h, b in zip((1, 2), before, strict=True)), 5 + 10
        )
        assert one.host.info(0).STATE in (1, 3)  # still hanging (MONITORING) or cut (ERROR)
    finally:
        test_hosts.restore()
    wait_for(lambda: one.host.info(0).STATE == 2, 60)


def _last_mon(one, hid: int) -> int:
    return int(one.host.info(hid).gds_elementtree_node_.findtext("LAST_MON_TIME"))
