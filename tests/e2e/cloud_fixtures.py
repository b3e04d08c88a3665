"""An oned for real guests: ``vmm_guest`` (one_vmm_kvm with a domain type) and VM_DIR where
QEMU may read, and a namespace host added and monitored; the e2e tests' shared set-up."""

from __future__ import annotations

import time
from pathlib import Path

import pyone

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for


def guest_oned(run_dir: Path, domain_type: str) -> OnedProcess:
    """oned's install under ``run_dir`` (not started): VM_MAD vmm_guest, VM_DIR <install>/vms."""
    location = run_dir / f"one-{time.monotonic_ns()}"
    vmm = (
        'VM_MAD = [ name = "vmm_guest", executable = "one_vmm_kvm",\n'
        f'          arguments = "--domain-type {domain_type}", type = "kvm" ]\n'
    )
    oned = OnedProcess(location, conf_extra=vmm).set(
        VM_DIR=f'"{location}/vms"', VM_POLLING_INTERVAL=2, HOST_MONITORING_INTERVAL=10
    )
    location.chmod(0o755)
    return oned


def monitored_host(one: pyone.OneServer, address: str) -> int:
    """The namespace host at ``address`` on vmm_guest and tm_ssh, once monitored."""
    hid = one.host.allocate(address, "im_kvm", "vmm_guest", "tm_ssh")
    wait_for(lambda: one.host.info(hid).STATE == 2, 30)
    return hid
