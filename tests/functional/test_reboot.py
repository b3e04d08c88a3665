"""reboot and reboot-hard of a RUNNING guest through a real oned and the dummy VMM driver:
pyone with the modern names, onevm reboot [--hard], a scripted driver failure, a refusal."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

RUNNING, PENDING = (3, 3), 1


@pytest.fixture
def cloud(tmp_path):
    """host01 on the plain dummy; host02 on a dummy whose first RESET fails."""
    script = tmp_path / "vmm.yaml"
    script.write_text(
        'RESET: {outcome: failure, message: "one-1 is not running on host02", times: 1}\n'
    )
    extra = (
        'VM_MAD = [ name = "vmm_script", executable = "one_vmm_dummy",\n'
        f'          arguments = "--script {script}", type = "xml" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).set(VM_POLLING_INTERVAL=1)
    oned.start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        one.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
        one.host.allocate("host02", "im_dummy", "vmm_script", "tm_dummy")
        wait_for(lambda: all(one.host.info(h).STATE == 2 for h in (0, 1)))
        yield oned, one
    finally:
        oned.stop()


def running_on(one, hid: int) -> int:
    vid = one.vm.allocate("NAME = web\nCPU = 0.5\nMEMORY = 128")
    one.vm.deploy(vid, hid)
    wait_for(lambda: pair(one, vid) == RUNNING)
    return vid


def pair(one, vid: int) -> tuple[int, int]:
    vm = one.vm.info(vid)
    return vm.STATE, vm.LCM_STATE


def vm_log(oned, vid: int) -> str:
    return (oned.location / "var" / str(vid) / "vm.log").read_text()


def test_reboot_and_reboot_hard_keep_the_vm_running_and_are_noted(cloud):
    """pyone's one.vm.action('reboot', id), then `onevm reboot --hard`: REBOOT and RESET reach
    the driver, the VM stays RUNNING on the same history record, both logs say so."""
    oned, one = cloud
    vid = running_on(one, 0)
    assert one.vm.action("reboot", vid) == vid
    wait_for(lambda: "VM successfully rebooted." in vm_log(oned, vid))
    done = oned.run_cli("onevm", "reboot", "--hard", "-v", str(vid))
    assert (done.returncode, done.stdout, done.stderr) == (0, "Rebooting VM\n", "")
    wait_for(lambda: "VM successfully reset." in vm_log(oned, vid))
    assert pair(one, vid) == RUNNING
    vm = one.vm.info(vid)
    assert [h.HOSTNAME for h in vm.HISTORY_RECORDS.HISTORY] == ["host01"]
    assert one.host.info(0).HOST_SHARE.RUNNING_VMS == 1
    log = vm_log(oned, vid)
    after = log[log.index("reboot requested") :]
    for line in ("Rebooting VM", "reset requested", "Resetting VM"):
        assert line in after
    assert "New VM state" not in after
    wait_for(lambda: f"VM {vid}: RESET SUCCESS" in oned.log)
    assert f"VM {vid}: REBOOT sent to host01" in oned.log


def test_a_failed_reset_keeps_the_vm_running_with_the_error_shown(cloud):
    """The driver's FAILURE: vm.log's error line, ERROR in onevm show, a POLL, still RUNNING;
    the next reset succeeds."""
    oned, one = cloud
    vid = running_on(one, 1)
    one.vm.action("reboot-hard", vid)
    message = "Error resetting VM: one-1 is not running on host02"
    wait_for(lambda: "Fail to reset VM." in vm_log(oned, vid))
    assert f"[LCM][E]: RESET_FAILURE: {message}" in vm_log(oned, vid)
    assert pair(one, vid) == RUNNING
    assert message in oned.run_cli("onevm", "show", str(vid)).stdout
    assert f"VM {vid}: RESET FAILURE: {message}" in oned.log
    one.vm.action("reset", vid)  # 4.x's name for the same action
    wait_for(lambda: "VM successfully reset." in vm_log(oned, vid))
    assert pair(one, vid) == RUNNING


def test_reboot_of_a_pending_vm_is_refused_with_0x800_and_nothing_changes(cloud):
    """OneActionException naming the state; onevm says oned's words and exits 255."""
    oned, one = cloud
    vid = one.vm.allocate("MEMORY = 64")
    with pytest.raises(pyone.OneActionException, match="PENDING: reboot is allowed in ACTIVE/R"):
        one.vm.action("reboot", vid)
    refused = oned.run_cli("onevm", "reboot", "--hard", str(vid))
    assert refused.returncode == 255
    assert f"VM {vid} is PENDING: reset is allowed in ACTIVE/RUNNING" in refused.stderr
    assert one.vm.info(vid).STATE == PENDING
