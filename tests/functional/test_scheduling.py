"""The seed's walk-through without a manual deploy: `one start` runs mm_sched, which places
pending VMs on dummy hosts through the real drivers and says why a VM waits."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.functional.test_monitor_quiet import scripted_oned
from tests.functional.test_monitoring import last_mon_time
from tests.waiting import wait_for


@pytest.fixture
def cloud(tmp_path):
    """`one start` (oned and mm_sched), two monitored dummy hosts; `one stop` at the end."""
    oned = OnedProcess(tmp_path / "one")
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr + started.stdout
    assert "oned and scheduler started" in started.stdout
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    for name in ("host01", "host02"):
        one.host.allocate(name, "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: all(one.host.info(h).STATE == 2 for h in (0, 1)))
    yield oned, one
    stopped = oned.run_cli("one", "stop")
    assert "oned and scheduler stopped" in stopped.stdout, stopped.stderr


def status(oned: OnedProcess, vid: int) -> list[str]:
    rows = oned.run_cli("onevm", "list").stdout.splitlines()[1:]
    return next(r.split() for r in rows if r.split()[0] == str(vid))


def test_a_created_vm_goes_from_pend_to_runn_on_a_host_the_scheduler_chose(cloud, tmp_path):
    """onevm create ttylinux.one; onevm list: pend, then runn with a HOSTNAME."""
    oned, one = cloud
    template = tmp_path / "ttylinux.one"
    template.write_text("NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\n")
    assert oned.run_cli("onevm", "create", str(template)).returncode == 0
    row = wait_for(lambda: (r := status(oned, 0))[3] == "runn" and r)
    assert row[6] in ("host01", "host02")


def test_requirements_choose_the_host(cloud):
    """REQUIREMENTS = "HOSTNAME = \\"host02\\"" lands on host02, every time."""
    _, one = cloud
    vids = [
        one.vm.allocate('MEMORY = 64\nREQUIREMENTS = "HOSTNAME = \\"host02\\""') for _ in range(3)
    ]
    for vid in vids:
        wait_for(lambda v=vid: one.vm.info(v).LCM_STATE == 3)
        assert one.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].HOSTNAME == "host02"


def test_an_unsatisfiable_vm_stays_pending_and_onevm_show_says_why(cloud):
    """No host09: the VM waits, its SCHED_MESSAGE names the requirement."""
    oned, one = cloud
    vid = one.vm.allocate('MEMORY = 64\nREQUIREMENTS = "HOSTNAME = \\"host09\\""')
    big = one.vm.allocate("MEMORY = 16777216")  # 16 TiB: the most a VM may ask for
    wait_for(lambda: "SCHED_MESSAGE" in (one.vm.info(vid).USER_TEMPLATE or {}))
    wait_for(lambda: "SCHED_MESSAGE" in (one.vm.info(big).USER_TEMPLATE or {}))
    assert one.vm.info(vid).STATE == 1
    show = oned.run_cli("onevm", "show", str(vid)).stdout
    assert 'HOSTNAME = "host09"' in show
    assert "memory" in one.vm.info(big).USER_TEMPLATE["SCHED_MESSAGE"]


def test_no_vm_is_placed_on_a_host_after_its_monitoring_failed(tmp_path):
    """Finding 6 of issue 11: a failing host went back to MONITORING (``on``) with a fresh
    LAST_MON_TIME and mm_sched fed it; it now stays ``err`` and gets no new VM."""
    rules = '"nothing*": {outcome: failure}\n'
    oned, script = scripted_oned(tmp_path, rules, HOST_MONITORING_INTERVAL=1)
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        for name in ("well", "sick"):
            one.host.allocate(name, "im_script", "vmm_dummy", "tm_dummy")
        wait_for(lambda: all(one.host.info(h).STATE == 2 for h in (0, 1)))
        script.write_text('"sick*": {outcome: failure, message: "no route to host"}\n')
        wait_for(lambda: one.host.info(1).STATE == 3)
        failed_at = last_mon_time(one, 1)
        vids = [one.vm.allocate("CPU = 0.1\nMEMORY = 64") for _ in range(6)]
        seen = set()

        def all_running() -> bool:
            seen.add(one.host.info(1).STATE)
            return all(one.vm.info(v).LCM_STATE == 3 for v in vids)

        wait_for(all_running, timeout=40, step=0.2)
        hosts = {one.vm.info(v).HISTORY_RECORDS.HISTORY[-1].HOSTNAME for v in vids}
        assert hosts == {"well"}
        assert seen == {3} and last_mon_time(one, 1) == failed_at
        row = next(r for r in oned.run_cli("onehost", "list").stdout.splitlines() if "sick" in r)
        assert " err" in row
    finally:
        oned.run_cli("one", "stop")


BUSY = (
    '"busy*": {outcome: garbage, message: "HYPERVISOR=dummy TOTALCPU=200 FREECPU=0 USEDCPU=200'
    ' TOTALMEMORY=2097152 FREEMEMORY=10240 USEDMEMORY=2086912"}\n'
)


def test_a_host_loaded_by_others_gets_vms_by_allocated_capacity_and_reservations(tmp_path):
    """Issue 16 item 3: a 2-CPU host whose monitoring says FREECPU 0 (loaded by other processes)
    and no VM allocated; RESERVED_CPU = 100 (onehost update) lets one of four 1-CPU VMs in, the
    others wait "not enough CPU"; RESERVED_CPU = -100 lets two more in, never the fourth."""
    oned, _ = scripted_oned(tmp_path, BUSY, HOST_MONITORING_INTERVAL=1)
    (oned.location / "etc" / "sched.conf").write_text("SCHED_INTERVAL = 1\nMAX_HOST = 4\n")
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        hid = one.host.allocate("busy01", "im_script", "vmm_dummy", "tm_dummy")
        wait_for(lambda: one.host.info(hid).STATE == 2)
        assert one.host.info(hid).TEMPLATE["FREECPU"] == "0"
        reserve = tmp_path / "reserve.tmpl"
        reserve.write_text("RESERVED_CPU = 100\n")
        updated = oned.run_cli("onehost", "update", "--append", "busy01", str(reserve))
        assert updated.returncode == 0, updated.stderr
        vids = [one.vm.allocate("CPU = 1\nMEMORY = 64") for _ in range(4)]

        def running() -> int:
            return sum(one.vm.info(v).LCM_STATE == 3 for v in vids)

        def waiting_for_cpu() -> int:
            messages = [(one.vm.info(v).USER_TEMPLATE or {}).get("SCHED_MESSAGE") for v in vids]
            return sum("busy01: not enough CPU (0 < 1)" in (m or "") for m in messages)

        wait_for(lambda: running() == 1 and waiting_for_cpu() == 3, timeout=30, step=0.2)
        reserve.write_text("RESERVED_CPU = -100\n")
        assert oned.run_cli("onehost", "update", "-a", "busy01", str(reserve)).returncode == 0
        wait_for(lambda: running() == 3 and waiting_for_cpu() == 1, timeout=30, step=0.2)
        assert one.host.info(hid).HOST_SHARE.CPU_USAGE == 300
    finally:
        oned.run_cli("one", "stop")


def test_onehost_update_replaces_or_merges_and_checks_the_reservations(cloud, tmp_path):
    """A non-integer RESERVED_CPU is refused naming it; a replaced template gets the monitoring
    back at once; --append keeps what is there."""
    oned, one = cloud
    tmpl = tmp_path / "host.tmpl"
    tmpl.write_text("RESERVED_CPU = lots\n")
    refused = oned.run_cli("onehost", "update", "host01", str(tmpl))
    assert refused.returncode == 255
    assert 'RESERVED_CPU = "lots" is not an integer' in refused.stderr
    tmpl.write_text("RESERVED_MEM = 1048576\n")
    assert oned.run_cli("onehost", "update", "host01", str(tmpl)).returncode == 0
    assert one.host.info(0).TEMPLATE["RESERVED_MEM"] == "1048576"
    wait_for(lambda: "TOTALCPU" in one.host.info(0).TEMPLATE and one.host.info(0).STATE == 2)
    tmpl.write_text("RESERVED_CPU = -50\n")
    assert oned.run_cli("onehost", "update", "-a", "host01", str(tmpl)).returncode == 0
    template = one.host.info(0).TEMPLATE
    assert (template["RESERVED_CPU"], template["RESERVED_MEM"]) == ("-50", "1048576")
