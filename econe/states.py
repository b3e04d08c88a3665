"""onecloud's VM and image states as EC2 names them: one total table each (HOUSE-STYLE: the
state-mapping table tested for totality).

Pure. OpenNebula 1.4's econe left `prol` and `save` out of its map, so DescribeInstances
raised on any VM in them (opennebula.md §10.4); here every (state, lcm_state) pair has an EC2
state, and a number this table does not know yet reads as `pending`, the state clients
simply wait through.
"""

from __future__ import annotations

from oned.states import ImageState, LcmState, VmState

# EC2's instance state codes (only the low byte is meaningful), ec2.md §1.6.
INSTANCE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}

VM_STATES = {
    VmState.INIT: "pending",
    VmState.PENDING: "pending",
    VmState.HOLD: "pending",
    VmState.STOPPED: "stopped",
    VmState.SUSPENDED: "stopped",
    VmState.DONE: "terminated",
    VmState.FAILED: "terminated",
    VmState.POWEROFF: "stopped",
    VmState.UNDEPLOYED: "stopped",
}

# For ACTIVE VMs. BOOT is still pending (unlike econe's `running`): the `instance_running`
# waiter must not return before the hypervisor has started the guest. A migration is
# invisible to an EC2 client: the instance stays running. UNKNOWN (the host lost sight of
# the VM) is stopped, not terminated: it may come back, and terminated is final for clients.
LCM_STATES = {
    LcmState.LCM_INIT: "pending",
    LcmState.PROLOG: "pending",
    LcmState.BOOT: "pending",
    LcmState.RUNNING: "running",
    LcmState.MIGRATE: "running",
    LcmState.SAVE_STOP: "stopping",
    LcmState.SAVE_SUSPEND: "stopping",
    LcmState.SAVE_MIGRATE: "running",
    LcmState.PROLOG_MIGRATE: "running",
    LcmState.PROLOG_RESUME: "pending",
    LcmState.EPILOG_STOP: "stopping",
    LcmState.EPILOG: "shutting-down",
    LcmState.SHUTDOWN: "shutting-down",
    LcmState.CANCEL: "shutting-down",
    LcmState.FAILURE: "shutting-down",
    LcmState.DELETE: "shutting-down",
    LcmState.UNKNOWN: "stopped",
}

# EC2 image states: pending, available, invalid, deregistered, transient, failed, error,
# disabled. USED and CLONE images can still be launched; a LOCKED one is being written.
IMAGE_STATES = {
    ImageState.INIT: "pending",
    ImageState.READY: "available",
    ImageState.USED: "available",
    ImageState.DISABLED: "disabled",
    ImageState.LOCKED: "pending",
    ImageState.ERROR: "failed",
    ImageState.CLONE: "available",
    ImageState.DELETE: "deregistered",
    ImageState.USED_PERS: "available",
    ImageState.LOCKED_USED: "pending",
    ImageState.LOCKED_USED_PERS: "pending",
}

_VM = {s.value: name for s, name in VM_STATES.items()}
_LCM = {s.value: name for s, name in LCM_STATES.items()}
_IMAGE = {s.value: name for s, name in IMAGE_STATES.items()}


def instance_state(state: int, lcm_state: int) -> tuple[str, int]:
    """(EC2 state name, code) of a VM in `state` (and `lcm_state` when ACTIVE)."""
    table, key = (_LCM, lcm_state) if state == VmState.ACTIVE else (_VM, state)
    name = table.get(key, "pending")
    return name, INSTANCE_CODES[name]


def image_state(state: int) -> str:
    """The EC2 `imageState` of an image in `state`; an unknown number is `transient`."""
    return _IMAGE.get(state, "transient")
