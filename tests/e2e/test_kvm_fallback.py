"""oned with one_vmm_kvm where KVM may not run guests (nested KVM off, as on this project's CI
machines): ``--domain-type auto`` boots the guest as qemu and says so in oned.log; a forced
``--domain-type kvm`` sends the VM to FAILED with the reason in its vm.log instead of ``runn``.

Where the session's own probe (``domain_type``: the test guest booted under KVM) finds KVM
working, auto must boot as kvm without a warning and the forced case is skipped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pyone
import pytest

from tests.e2e.cloud_fixtures import guest_oned, monitored_host
from tests.e2e.guest_fixtures import ConsoleLog
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

BOOT_SECONDS = 180  # the probe (10 s at most), then the guest under TCG on a busy machine


@pytest.fixture
def start_cloud(run_dir, test_hosts):
    """``start_cloud(kind)``: oned -f whose vmm_guest runs with ``--domain-type kind``, one
    namespace host on it (monitored); every VM finalized and oned stopped after."""
    made: list[tuple[OnedProcess, pyone.OneServer]] = []

    def start(kind: str):
        oned = guest_oned(run_dir, kind)
        location = oned.location
        oned.start()
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        made.append((oned, one))
        monitored_host(one, test_hosts[0][1])
        return oned, one, location

    yield start
    for oned, one in made:
        for vm in one.vmpool.info(-2, -1, -1, -1).VM:
            one.vm.action("finalize", vm.ID)
        oned.cleanup()


def guest_template(guest) -> str:
    return (
        f'NAME = probe\nCPU = 0.1\nMEMORY = 128\nOS = [ KERNEL = "{guest.kernel}",'
        f' INITRD = "{guest.initrd}", KERNEL_CMD = "console=ttyS0" ]\n'
        f'DISK = [ SOURCE = "{guest.disk}", TARGET = "hda" ]\n'
    )


def test_auto_boots_the_guest_and_warns_in_oned_log_where_kvm_cannot_run_it(
    start_cloud, test_guest, domain_type
):
    oned, one, location = start_cloud("auto")
    vid = one.vm.allocate(guest_template(test_guest))
    one.vm.deploy(vid, 0)
    wait_for(lambda: one.vm.info(vid).LCM_STATE == 3, BOOT_SECONDS)
    ConsoleLog(location / "vms" / str(vid) / "console.log").wait_for("ONECLOUD BOOTED", 120)
    domain = ET.parse(location / "vms" / str(vid) / "images" / "deployment.0").getroot()
    assert domain.get("type") == domain_type
    warnings = [line for line in oned.log.splitlines() if "KVM cannot run guests" in line]
    if domain_type == "kvm":
        assert warnings == []
    else:
        assert len(warnings) == 1, oned.log
        assert "][W]: " in warnings[0], warnings[0]
        assert "domain type qemu (TCG emulation)" in warnings[0]


def test_forced_kvm_where_kvm_cannot_run_guests_sends_the_vm_to_failed_with_the_reason(
    start_cloud, test_guest, domain_type
):
    if domain_type == "kvm":
        pytest.skip("KVM runs guests on this machine")
    oned, one, location = start_cloud("kvm")
    vid = one.vm.allocate(guest_template(test_guest))
    one.vm.deploy(vid, 0)
    wait_for(lambda: one.vm.info(vid).STATE == 7, 120)  # FAILED
    log = (location / "var" / str(vid) / "vm.log").read_text()
    assert "KVM cannot run guests on" in log, log
    assert "start one_vmm_kvm with --domain-type auto or qemu" in log
