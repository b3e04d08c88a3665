"""State numbers of VMs, hosts and history records, as OpenNebula numbers them.

The numbers are part of the XML-RPC API and of the database: never renumber, only append.
Short names are the ones the 1.4 CLI prints in the STAT column.
"""

from enum import IntEnum


class VmState(IntEnum):
    INIT = 0
    PENDING = 1
    HOLD = 2
    ACTIVE = 3
    STOPPED = 4
    SUSPENDED = 5
    DONE = 6
    FAILED = 7
    # NOTE: 8 and 9 are OpenNebula 3.x+ states (POWEROFF, UNDEPLOYED); kept for pyone's enums.
    POWEROFF = 8
    UNDEPLOYED = 9


class LcmState(IntEnum):
    LCM_INIT = 0
    PROLOG = 1
    BOOT = 2
    RUNNING = 3
    MIGRATE = 4
    SAVE_STOP = 5
    SAVE_SUSPEND = 6
    SAVE_MIGRATE = 7
    PROLOG_MIGRATE = 8
    PROLOG_RESUME = 9
    EPILOG_STOP = 10
    EPILOG = 11
    SHUTDOWN = 12
    CANCEL = 13
    FAILURE = 14
    DELETE = 15
    UNKNOWN = 16


class HostState(IntEnum):
    INIT = 0
    MONITORING = 1
    MONITORED = 2
    ERROR = 3
    DISABLED = 4


class ImageState(IntEnum):
    """OpenNebula's image states (2.0 had 0-3, 2.2 added LOCKED and ERROR, later ones the rest).

    The store keeps INIT, READY, DISABLED, LOCKED or ERROR; USED is what a READY image shows
    while VMs use it (derived from the VMs, like a host's capacity: it cannot drift)."""

    INIT = 0  # registered without content (waits for a one.vm.savedisk)
    READY = 1
    USED = 2
    DISABLED = 3
    LOCKED = 4  # its file is being copied or saved into the repository
    ERROR = 5  # the copy or save failed; the reason is the template's ERROR
    CLONE = 6  # NOTE: 6-10 are modern OpenNebula's; kept for its clients' enums
    DELETE = 7
    USED_PERS = 8
    LOCKED_USED = 9
    LOCKED_USED_PERS = 10


class ImageType(IntEnum):
    OS = 0
    CDROM = 1
    DATABLOCK = 2


IMAGE_SHORT = {
    ImageState.INIT: "init",
    ImageState.READY: "rdy",
    ImageState.USED: "used",
    ImageState.DISABLED: "disa",
    ImageState.LOCKED: "lock",
    ImageState.ERROR: "err",
    ImageState.CLONE: "clon",
    ImageState.DELETE: "dele",
    ImageState.USED_PERS: "used",
    ImageState.LOCKED_USED: "lock",
    ImageState.LOCKED_USED_PERS: "lock",
}


class HistoryReason(IntEnum):
    NONE = 0
    ERROR = 1
    STOP_RESUME = 2
    USER = 3
    CANCEL = 4


VM_SHORT = {
    VmState.INIT: "init",
    VmState.PENDING: "pend",
    VmState.HOLD: "hold",
    VmState.ACTIVE: "actv",
    VmState.STOPPED: "stop",
    VmState.SUSPENDED: "susp",
    VmState.DONE: "done",
    VmState.FAILED: "fail",
    VmState.POWEROFF: "poff",
    VmState.UNDEPLOYED: "unde",
}

LCM_SHORT = {
    LcmState.LCM_INIT: "",
    LcmState.PROLOG: "prol",
    LcmState.BOOT: "boot",
    LcmState.RUNNING: "runn",
    LcmState.MIGRATE: "migr",
    LcmState.SAVE_STOP: "save",
    LcmState.SAVE_SUSPEND: "save",
    LcmState.SAVE_MIGRATE: "save",
    LcmState.PROLOG_MIGRATE: "migr",
    LcmState.PROLOG_RESUME: "prol",
    LcmState.EPILOG_STOP: "epil",
    LcmState.EPILOG: "epil",
    LcmState.SHUTDOWN: "shut",
    LcmState.CANCEL: "shut",
    LcmState.FAILURE: "fail",
    LcmState.DELETE: "dele",
    LcmState.UNKNOWN: "unkn",
}

HOST_SHORT = {
    HostState.INIT: "on",
    HostState.MONITORING: "on",
    HostState.MONITORED: "on",
    HostState.ERROR: "err",
    HostState.DISABLED: "off",
}

REASON_SHORT = {
    HistoryReason.NONE: "none",
    HistoryReason.ERROR: "erro",
    HistoryReason.STOP_RESUME: "stop",
    HistoryReason.USER: "user",
    HistoryReason.CANCEL: "canc",
}


def vm_short_status(state: int, lcm_state: int) -> str:
    """The CLI's STAT column: the short VM state, or the short LCM state when ACTIVE."""
    if state == VmState.ACTIVE:
        return LCM_SHORT.get(LcmState(lcm_state), "unkn") if lcm_state in _LCM_VALUES else "unkn"
    return VM_SHORT.get(VmState(state), "unkn") if state in _VM_VALUES else "unkn"


_LCM_VALUES = {s.value for s in LcmState}
_VM_VALUES = {s.value for s in VmState}
