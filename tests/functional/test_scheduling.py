"""The seed's walk-through without a manual deploy: `one start` runs mm_sched, which places
pending VMs on dummy hosts through the real drivers and says why a VM waits."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
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
    script = tmp_path / "im_script.yaml"
    script.write_text('"nothing*": {outcome: failure}\n')
    extra = (
        f'IM_MAD = [ name = "im_script", executable = "one_im_dummy",\n'
        f'           arguments = "--script {script}" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).set(HOST_MONITORING_INTERVAL=1)
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
