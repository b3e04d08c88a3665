"""Cancel cleans up (issue 16): after CANCEL succeeds the VM is DONE at once and the TM's delete
script removes its folder from the host; a failed delete is logged and the VM stays DONE."""

from __future__ import annotations

import logging

from oned.api import vm_actions
from oned.states import VmState
from tests.unit.test_lcm_shell import ADMIN, shell  # noqa: F401 (the fixture)


def test_a_cancelled_vm_is_done_and_its_folder_is_deleted_on_its_host(shell, caplog):  # noqa: F811
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    vm_actions.action(cloud, ADMIN, "cancel", 0)
    assert vmm.sent[-1] == "CANCEL 0 host00 one-0 -"
    vmm.answer("CANCEL", 0)
    assert cloud.pools.vms.get(0) is None and store.get_vm(0).state == VmState.DONE
    script = tmp / "var" / "0" / "transfer.0.delete"
    assert tmc.sent[-1] == f"TRANSFER 0 {script}"
    assert script.read_text() == f"DELETE host00:{tmp}/var/0/images\n"
    with caplog.at_level(logging.ERROR, logger="t"):
        tmc.answer("TRANSFER", 0, ok=False, info="rm: cannot remove: Read-only file system")
    assert "VM 0: transfer failed: rm: cannot remove: Read-only file system" in caplog.text
    assert store.get_vm(0).state == VmState.DONE
    assert cloud.pools.hosts.get(0).share.running_vms == 0
