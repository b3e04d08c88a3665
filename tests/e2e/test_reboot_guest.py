"""reboot and reboot-hard of a real guest through oned: one_vmm_kvm's libvirt reboot (ACPI:
the test guest powers off and libvirt starts it again) and reset, on a namespace host. The
guest's console shows each new boot; the VM stays RUNNING on the same domain throughout."""

from __future__ import annotations

import pyone
import pytest

from tests.e2e.cloud_fixtures import guest_oned, monitored_host
from tests.e2e.guest_fixtures import ConsoleLog
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
BOOTED = "ONECLOUD BOOTED"


@pytest.fixture
def cloud(libvirt_uri, test_guest, run_dir, test_hosts, domain_type):
    """oned alone (VMs deployed by hand, no scheduler) and one monitored namespace host."""
    oned = guest_oned(run_dir, domain_type).start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        hid = monitored_host(one, test_hosts[1][1])
        yield oned, one, hid
        for vm in one.vmpool.info(-2, -1, -1, -1).VM:
            one.vm.action("finalize", vm.ID)
    finally:
        oned.stop()


def boots(console: ConsoleLog) -> int:
    return console.text().count(BOOTED)


def test_reboot_and_reboot_hard_boot_the_guest_again_while_it_stays_running(cloud, test_guest):
    """deploy -> runn, one boot on the console; reboot (ACPI) -> a second boot; reboot-hard
    (reset) -> a third; the deploy id and the history record never change."""
    oned, one, hid = cloud
    vid = one.vm.allocate(
        f'NAME = rebooter\nCPU = 0.1\nMEMORY = 128\nOS = [ KERNEL = "{test_guest.kernel}",'
        f' INITRD = "{test_guest.initrd}", KERNEL_CMD = "console=ttyS0" ]\n'
        f'DISK = [ SOURCE = "{test_guest.disk}", TARGET = "hda" ]\n'
    )
    one.vm.deploy(vid, hid)
    console = ConsoleLog(oned.location / "vms" / str(vid) / "console.log")
    wait_for(lambda: one.vm.info(vid).LCM_STATE == 3, 120)
    console.wait_for(BOOTED, 120)
    deploy_id = one.vm.info(vid).DEPLOY_ID
    one.vm.action("reboot", vid)
    wait_for(lambda: boots(console) == 2, 120)
    assert oned.run_cli("onevm", "reboot", "--hard", str(vid)).returncode == 0
    wait_for(lambda: boots(console) == 3, 120)
    vm = one.vm.info(vid)
    assert (vm.STATE, vm.LCM_STATE, vm.DEPLOY_ID) == (3, 3, deploy_id)
    assert len(vm.HISTORY_RECORDS.HISTORY) == 1
    log = (oned.location / "var" / str(vid) / "vm.log").read_text()
    assert "VM successfully rebooted." in log and "VM successfully reset." in log
