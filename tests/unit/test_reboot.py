"""reboot and reset (reboot-hard) of a RUNNING guest: rows that send REBOOT/RESET to the VMM
driver and keep the VM RUNNING (OpenNebula 3.x/4.x), the API names, the shell's vm.log lines."""

from __future__ import annotations

import pytest

from oned.api import vm_actions
from oned.api.vm_actions import ACTIONS
from oned.errors import ActionNotAllowed
from oned.lifecycle import (
    TABLE,
    VALID_PAIRS,
    At,
    Event,
    HostRef,
    Ignored,
    Outcome,
    VmmAction,
    check,
    state_name,
    step,
    vmm_event,
)
from oned.records import History, Vm
from oned.template import Template
from oned.vmm import _message
from tests.unit import test_lcm_shell
from tests.unit.test_lcm_shell import ADMIN, vm_of

shell = test_lcm_shell.shell  # the lifecycle shell on fake driver channels (a fixture)
E = Event
HOST = HostRef(0, "host01", "vmm_kvm", "tm_ssh", "/srv/cloud/one/var")
POLL = VmmAction("POLL")

# (source, event, after a stop, target, effects, vm.log lines): counted by
# tests/unit/test_lifecycle.py's "whole table" check. No row moves the VM, so none fires a hook.
REBOOT_ROWS = [
    (At.RUNNING, E.REBOOT, False, At.RUNNING, (VmmAction("REBOOT"),), ("Rebooting VM",)),
    (At.RUNNING, E.RESET, False, At.RUNNING, (VmmAction("RESET"),), ("Resetting VM",)),
    (At.RUNNING, E.REBOOT_SUCCESS, False, At.RUNNING, (), ("VM successfully rebooted.",)),
    (At.RUNNING, E.RESET_SUCCESS, False, At.RUNNING, (), ("VM successfully reset.",)),
    (
        At.RUNNING,
        E.REBOOT_FAILURE,
        False,
        At.RUNNING,
        (POLL,),
        ("Fail to reboot VM. Assuming that the VM is still RUNNING (will poll VM).",),
    ),
    (
        At.RUNNING,
        E.RESET_FAILURE,
        False,
        At.RUNNING,
        (POLL,),
        ("Fail to reset VM. Assuming that the VM is still RUNNING (will poll VM).",),
    ),
]


def vm_at(pair):
    history = [History(7, 0, HOST.name, HOST.hid, HOST.vm_dir, HOST.vm_mad, HOST.tm_mad)]
    return Vm(7, 0, "web", Template(), state=pair[0], lcm_state=pair[1], history=history)


@pytest.mark.parametrize(
    ("source", "event", "after_stop", "target", "effects", "log"),
    REBOOT_ROWS,
    ids=[f"{state_name(*r[0])}-{r[1]}" for r in REBOOT_ROWS],
)
def test_reboot_rows_keep_the_vm_running_and_say_what_happened(
    source, event, after_stop, target, effects, log
):
    """The pair does not change: no "New VM state" line and no RUNNING hook, only the row's
    own message; the action goes to the driver, a failure polls."""
    out = step(vm_at(source), event, now=500)
    assert isinstance(out, Outcome)
    assert ((out.state, out.lcm_state), out.effects, out.log) == (target, effects, log)
    assert out.history == () and out.vm_etime is None


@pytest.mark.parametrize("event", [E.REBOOT, E.RESET])
def test_reboot_and_reset_are_allowed_in_running_only(event):
    """Every other pair refuses with 0x800 naming the state and ACTIVE/RUNNING."""
    allowed = {pair for pair in VALID_PAIRS if (*pair, event) in TABLE}
    assert allowed == {At.RUNNING}
    with pytest.raises(ActionNotAllowed) as refused:
        check(*At.PENDING, event, 7)
    assert refused.value.code == 0x800
    assert refused.value.message == (
        f"[one.vm.action] VM 7 is PENDING: {event} is allowed in ACTIVE/RUNNING"
    )
    with pytest.raises(ActionNotAllowed, match="VM 7 is ACTIVE/UNKNOWN"):
        step(vm_at(At.UNKNOWN), event, now=1)


@pytest.mark.parametrize(
    "event", [E.REBOOT_SUCCESS, E.REBOOT_FAILURE, E.RESET_SUCCESS, E.RESET_FAILURE]
)
@pytest.mark.parametrize("pair", [At.SHUTDOWN, At.UNKNOWN, At.SAVE_STOP, At.DONE])
def test_a_reply_after_the_vm_left_running_is_ignored(pair, event):
    """Say a shutdown followed the reboot: the late REBOOT reply changes nothing."""
    out = step(vm_at(pair), event, now=1)
    assert isinstance(out, Ignored)
    assert f"VM 7 is {state_name(*pair)}" in out.reason


def test_the_action_names_of_every_era_reach_the_two_events():
    """3.x/modern "reboot"; 4.x "reset" and modern "reboot-hard" are the same hard reset."""
    names = ("reboot", "reset", "reboot-hard")
    assert [ACTIONS[name] for name in names] == [E.REBOOT, E.RESET, E.RESET]


@pytest.mark.parametrize(
    ("action", "success", "event"),
    [
        ("REBOOT", True, E.REBOOT_SUCCESS),
        ("REBOOT", False, E.REBOOT_FAILURE),
        ("RESET", True, E.RESET_SUCCESS),
        ("RESET", False, E.RESET_FAILURE),
    ],
)
def test_reboot_replies_map_to_their_events(action, success, event):
    assert vmm_event(action, success) == event


def test_a_failed_reboot_is_reported_in_opennebulas_words():
    """3.x/4.x: "Error rebooting VM: <driver's message>"; a message that starts with '-' is
    left out as 1.4 does."""
    assert _message("REBOOT", "guest ignores ACPI") == "Error rebooting VM: guest ignores ACPI"
    assert _message("RESET", "-") == "Error resetting VM"


def running(cloud, vmm, tmc):
    """VM 0 deployed on host01 by the shell fixture's fake drivers, RUNNING as one-0."""
    vm_actions.deploy(cloud, ADMIN, 0, 1)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    assert (vm_of(cloud).state, vm_of(cloud).lcm_state) == At.RUNNING
    vmm.sent.clear()


def log_after(tmp, mark):
    """vm.log from the last line that contains ``mark``."""
    text = (tmp / "var" / "0" / "vm.log").read_text()
    return text[text.rfind("\n", 0, text.rindex(mark)) + 1 :]


def test_reboot_sends_reboot_to_the_host_and_the_vm_stays_running(shell):
    """REBOOT <vid> <host> <deploy_id> - (the SHUTDOWN form); vm.log says so without a state
    line; the success is noted; the store saw the VM stay RUNNING."""
    cloud, clock, vmm, tmc, store, tmp = shell
    running(cloud, vmm, tmc)
    assert vm_actions.action(cloud, ADMIN, "reboot", 0) == 0
    assert vmm.sent == ["REBOOT 0 host01 one-0 -"]
    vmm.answer("REBOOT", 0)
    assert (store.get_vm(0).state, store.get_vm(0).lcm_state) == At.RUNNING
    lines = log_after(tmp, "reboot requested").splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "reboot requested",
        "Rebooting VM",
        "VM successfully rebooted.",
    ]


def test_a_failed_reset_keeps_the_vm_running_logs_the_error_and_polls(shell):
    """reboot-hard is RESET; the driver's FAILURE is in vm.log and ERROR, then a POLL."""
    cloud, clock, vmm, tmc, store, tmp = shell
    running(cloud, vmm, tmc)
    vm_actions.action(cloud, ADMIN, "reboot-hard", 0)
    assert vmm.sent == ["RESET 0 host01 one-0 -"]
    vmm.answer("RESET", 0, False, "one-0 is not running on host01")
    assert vmm.sent[-1] == "POLL 0 host01 one-0 -"
    vm = vm_of(cloud)
    assert (vm.state, vm.lcm_state) == At.RUNNING
    message = "Error resetting VM: one-0 is not running on host01"
    assert vm.template.get("ERROR")["MESSAGE"] == message
    log = log_after(tmp, "reset requested")
    assert f"[LCM][E]: RESET_FAILURE: {message}" in log
    assert "Fail to reset VM. Assuming that the VM is still RUNNING (will poll VM)." in log
    assert "New VM state" not in log


def test_a_reboot_reply_after_a_shutdown_is_dropped(shell):
    """The VM left RUNNING meanwhile: the late REBOOT SUCCESS is logged as ignored."""
    cloud, clock, vmm, tmc, store, tmp = shell
    running(cloud, vmm, tmc)
    vm_actions.action(cloud, ADMIN, "reboot", 0)
    vm_actions.action(cloud, ADMIN, "shutdown", 0)
    vmm.answer("REBOOT", 0)
    assert (vm_of(cloud).state, vm_of(cloud).lcm_state) == At.SHUTDOWN
    assert "Ignored: REBOOT_SUCCESS ignored: VM 0 is ACTIVE/SHUTDOWN" in log_after(tmp, "reboot")


def test_reboot_of_a_pending_vm_is_refused_and_changes_nothing(shell):
    cloud, clock, vmm, tmc, store, tmp = shell
    with pytest.raises(ActionNotAllowed, match="VM 0 is PENDING: reboot is allowed in ACTIVE/"):
        vm_actions.action(cloud, ADMIN, "reboot", 0)
    assert vmm.sent == [] and not (tmp / "var" / "0" / "vm.log").exists()
