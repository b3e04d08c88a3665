"""The seed's Part III walk-through through oned on a real guest: a namespace host monitored
over SSH, one_vmm_kvm on libvirt/QEMU, one_tm ssh, CONTEXT on a cdrom, the scheduler."""

from __future__ import annotations

import pyone
import pytest

from tests.e2e.cloud_fixtures import guest_oned, monitored_host
from tests.e2e.guest_fixtures import ConsoleLog
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cloud(libvirt_uri, test_guest, run_dir, test_hosts, domain_type):
    """oned (ONE_LOCATION and VM_DIR where QEMU may read), `one start`, one namespace host."""
    oned = guest_oned(run_dir, domain_type)
    location = oned.location
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    _, address = test_hosts[1]
    monitored_host(one, address)
    yield oned, one, location
    for vm in one.vmpool.info(-2, -1, -1, -1).VM:
        one.vm.action("finalize", vm.ID)
    oned.run_cli("one", "stop")


def test_a_created_vm_boots_reads_its_context_and_shuts_down_to_done(cloud, test_guest, tmp_path):
    """onevm create -> pend -> (mm_sched) prol -> boot -> runn; console; shutdown -> done."""
    oned, one, location = cloud
    template = tmp_path / "ttylinux.one"
    template.write_text(
        f"NAME = ttylinux\nCPU = 0.1\nMEMORY = 128\n"
        f'OS = [ KERNEL = "{test_guest.kernel}", INITRD = "{test_guest.initrd}",'
        f' KERNEL_CMD = "console=ttyS0" ]\n'
        f'DISK = [ SOURCE = "{test_guest.disk}", TARGET = "hda" ]\n'
        f'CONTEXT = [ HOSTNAME = "$NAME", IP = "10.9.8.7", TARGET = "hdc" ]\n'
    )
    assert oned.run_cli("onevm", "create", str(template)).returncode == 0
    wait_for(lambda: one.vm.info(0).LCM_STATE == 3, 120)
    console = ConsoleLog(location / "vms" / "0" / "console.log")
    console.wait_for(r"ONECLOUD CONTEXT IP=10\.9\.8\.7 HOSTNAME=ttylinux", 120)
    console.wait_for(r"ONECLOUD BOOTED", 60)
    wait_for(lambda: one.vm.info(0).MONITORING.MEMORY, 30)  # polled through the driver
    assert (location / "vms" / "0" / "images" / "disk.1").exists()  # the context ISO
    one.vm.action("shutdown", 0)
    wait_for(lambda: one.vm.info(0).STATE == 6, 120)
    log = wait_for(
        lambda: (
            (t := (location / "var" / "0" / "vm.log").read_text()).endswith(
                "New VM state is DONE\n"
            )
            and t
        ),
        10,
    )
    for state in ("ACTIVE/PROLOG", "ACTIVE/BOOT", "ACTIVE/RUNNING", "ACTIVE/SHUTDOWN", "DONE"):
        assert f"New VM state is {state}" in log
    history = oned.run_cli("onevm", "history", "0").stdout
    assert "user" in history or "none" in history


def test_suspend_resume_and_stop_resume_keep_the_same_guest_running(cloud, test_guest, tmp_path):
    """suspend -> susp -> resume -> runn; stop -> stop (disks back on the front-end) -> resume
    -> pend -> (mm_sched) prol -> boot -> runn; the guest's console goes on, never reboots."""
    oned, one, location = cloud
    one.vm.allocate(
        f'NAME = saver\nCPU = 0.1\nMEMORY = 128\nOS = [ KERNEL = "{test_guest.kernel}",'
        f' INITRD = "{test_guest.initrd}", KERNEL_CMD = "console=ttyS0" ]\n'
        f'DISK = [ SOURCE = "{test_guest.disk}", TARGET = "hda" ]\n'
    )
    console = ConsoleLog(location / "vms" / "0" / "console.log")
    wait_for(lambda: one.vm.info(0).LCM_STATE == 3, 120)
    console.wait_for(r"ONECLOUD BOOTED", 120)
    one.vm.action("suspend", 0)
    wait_for(lambda: one.vm.info(0).STATE == 5, 120)
    one.vm.action("resume", 0)
    wait_for(lambda: one.vm.info(0).LCM_STATE == 3, 120)
    one.vm.action("stop", 0)
    wait_for(lambda: one.vm.info(0).STATE == 4, 120)
    assert (location / "var" / "0" / "images").is_dir()  # checkpoint and disks on the front-end
    one.vm.action("resume", 0)
    wait_for(lambda: one.vm.info(0).STATE == 3 and one.vm.info(0).LCM_STATE == 3, 180)
    assert console.text().count("ONECLOUD BOOTED") == 1  # restored, not rebooted
    reasons = oned.run_cli("onevm", "history", "0").stdout
    assert "stop" in reasons
