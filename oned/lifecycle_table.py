"""The VM life cycle as data: events, the states they apply in and the transition table (§3).

``oned.lifecycle`` runs this table; import from there. A row reads: in (state, lcm_state), on an
event, go to (state, lcm_state), change these history records and ask the shell for these effects,
in this order (the history changes and effects are oned/lifecycle_effects.py's).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, cast

from oned.lifecycle_effects import (
    LAST,
    NOW,
    PREVIOUS,
    AddCapacity,
    DelCapacity,
    DriverCancel,
    Effect,
    HistoryChange,
    OpenHistory,
    Record,
    ReleaseLeases,
    SetHistory,
    TmTransfer,
    VmmAction,
)
from oned.states import HistoryReason as R
from oned.states import LcmState as L
from oned.states import VmState as S

Pair = tuple[S, L]


class Event(StrEnum):
    """User actions as one.vm.action spells them, then driver outcomes (reference §1.5, §1.6)."""

    DEPLOY = "deploy"
    SHUTDOWN = "shutdown"
    CANCEL = "cancel"
    STOP = "stop"
    SUSPEND = "suspend"
    RESUME = "resume"
    MIGRATE = "migrate"
    LIVEMIGRATE = "livemigrate"
    RESTART = "restart"
    REBOOT = "reboot"  # 3.x; modern OpenNebula's too
    RESET = "reset"  # 4.x; modern OpenNebula calls it "reboot-hard" (oned.api.vm_actions)
    HOLD = "hold"
    RELEASE = "release"
    DELETE = "delete"  # 1.4 calls it "finalize"
    PROLOG_SUCCESS = "PROLOG_SUCCESS"
    PROLOG_FAILURE = "PROLOG_FAILURE"
    DEPLOY_SUCCESS = "DEPLOY_SUCCESS"
    DEPLOY_FAILURE = "DEPLOY_FAILURE"
    SHUTDOWN_SUCCESS = "SHUTDOWN_SUCCESS"
    SHUTDOWN_FAILURE = "SHUTDOWN_FAILURE"
    CANCEL_SUCCESS = "CANCEL_SUCCESS"
    CANCEL_FAILURE = "CANCEL_FAILURE"
    SAVE_SUCCESS = "SAVE_SUCCESS"
    SAVE_FAILURE = "SAVE_FAILURE"
    RESTORE_SUCCESS = "RESTORE_SUCCESS"
    RESTORE_FAILURE = "RESTORE_FAILURE"
    MIGRATE_SUCCESS = "MIGRATE_SUCCESS"
    MIGRATE_FAILURE = "MIGRATE_FAILURE"
    REBOOT_SUCCESS = "REBOOT_SUCCESS"
    REBOOT_FAILURE = "REBOOT_FAILURE"
    RESET_SUCCESS = "RESET_SUCCESS"
    RESET_FAILURE = "RESET_FAILURE"
    EPILOG_SUCCESS = "EPILOG_SUCCESS"
    EPILOG_FAILURE = "EPILOG_FAILURE"
    POLL_RUNNING = "POLL_RUNNING"  # POLL STATE=a
    POLL_SUSPENDED = "POLL_SUSPENDED"  # STATE=p
    POLL_FAILED = "POLL_FAILED"  # STATE=e
    POLL_DELETED = "POLL_DELETED"  # STATE=d: the hypervisor does not know the domain
    POLL_UNKNOWN = "POLL_UNKNOWN"  # STATE=- (or none): no state change

    @classmethod
    def _missing_(cls, value: object) -> Event | None:
        return cls.DELETE if value == "finalize" else None


USER_ACTIONS = frozenset(e for e in Event if e.value.islower())
NEEDS_HOST = frozenset({Event.DEPLOY, Event.MIGRATE, Event.LIVEMIGRATE})


# -- Rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetVmEtime:
    """Table marker: the VM's own ETIME becomes the event's time (``Outcome.vm_etime``)."""


Item = HistoryChange | Effect | SetVmEtime


class At:
    """The (state, lcm_state) pairs a VM can be in. LCM FAILURE and DELETE are not kept: 1.4
    passes through them on its way to FAILED and DONE, step() goes there at once."""

    INIT, PENDING, HOLD = (S.INIT, L.LCM_INIT), (S.PENDING, L.LCM_INIT), (S.HOLD, L.LCM_INIT)
    STOPPED, SUSPENDED = (S.STOPPED, L.LCM_INIT), (S.SUSPENDED, L.LCM_INIT)
    DONE, FAILED = (S.DONE, L.LCM_INIT), (S.FAILED, L.LCM_INIT)
    PROLOG, BOOT, RUNNING = (S.ACTIVE, L.PROLOG), (S.ACTIVE, L.BOOT), (S.ACTIVE, L.RUNNING)
    MIGRATE, SAVE_MIGRATE = (S.ACTIVE, L.MIGRATE), (S.ACTIVE, L.SAVE_MIGRATE)
    SAVE_STOP, SAVE_SUSPEND = (S.ACTIVE, L.SAVE_STOP), (S.ACTIVE, L.SAVE_SUSPEND)
    PROLOG_MIGRATE, PROLOG_RESUME = (S.ACTIVE, L.PROLOG_MIGRATE), (S.ACTIVE, L.PROLOG_RESUME)
    EPILOG_STOP, EPILOG = (S.ACTIVE, L.EPILOG_STOP), (S.ACTIVE, L.EPILOG)
    SHUTDOWN, CANCEL, UNKNOWN = (S.ACTIVE, L.SHUTDOWN), (S.ACTIVE, L.CANCEL), (S.ACTIVE, L.UNKNOWN)


_NOT_KEPT = {L.LCM_INIT, L.FAILURE, L.DELETE}
ACTIVE_PAIRS = tuple((S.ACTIVE, lcm) for lcm in L if lcm not in _NOT_KEPT)
VALID_PAIRS = frozenset(
    [(s, L.LCM_INIT) for s in (S.INIT, S.PENDING, S.HOLD, S.STOPPED, S.SUSPENDED, S.DONE, S.FAILED)]
    + list(ACTIVE_PAIRS)
)


@dataclass(frozen=True)
class Row:
    source: Pair
    event: Event
    target: Pair
    history: tuple[HistoryChange, ...] = ()
    effects: tuple[Effect, ...] = ()
    vm_etime: bool = False
    when: str | None = None  # a guard named in lifecycle._GUARDS; None always holds
    message: str = ""


def _rows(
    sources: Pair | tuple[Pair, ...],
    event: Event,
    target: Pair,
    *items: Item,
    when: str | None = None,
    message: str = "",
) -> list[Row]:
    """One row per source pair; ``items`` mix history changes, effects and SetVmEtime."""
    many = cast(tuple[Pair, ...], (sources,) if isinstance(sources[0], S) else sources)
    history = tuple(i for i in items if isinstance(i, OpenHistory | SetHistory))
    effects = tuple(i for i in items if isinstance(i, Effect))
    etime = any(isinstance(i, SetVmEtime) for i in items)
    return [Row(s, event, target, history, effects, etime, when, message) for s in many]


def opens(*fields: str, copy_of: Record | None = None) -> OpenHistory:
    return OpenHistory(tuple((f, NOW) for f in fields), copy_of)


def sets(record: Record, *fields: str, reason: R | None = None) -> SetHistory:
    values = tuple((f, NOW) for f in fields)
    return SetHistory(record, values + ((("reason", int(reason)),) if reason is not None else ()))


def _failed(time_field: str) -> tuple[Item, ...]:
    """§3.3 Failure: close the record with ERROR, free the host, FAILED, TM delete.

    NOTE: 1.4 kept a FAILED VM's leases until it was deleted; onecloud gives them back when it
    fails (a FAILED VM never runs again), so a failure cannot exhaust a network.
    """
    close = sets(LAST, time_field, "etime", reason=R.ERROR)
    return (close, DelCapacity(), SetVmEtime(), ReleaseLeases(), TmTransfer("delete"))


_DONE = (SetVmEtime(), ReleaseLeases())  # DM DONE (§3.3 shutdown step 3)
_RUNNING_AGAIN = "Assuming that the VM is still RUNNING (will poll VM)."
# §3.3 cold-migrate step 5 / live-migrate step 3: the failed new host becomes the previous record
_ROLLBACK = (
    sets(LAST, "etime", reason=R.ERROR),
    sets(PREVIOUS, "etime", "retime", reason=R.USER),
    opens("stime", "rstime", copy_of=PREVIOUS),
    DelCapacity(PREVIOUS),
    VmmAction("POLL"),
)


def _deleted(*fields: str) -> tuple[Item, ...]:
    """§3.4 step 1: close the record with USER (and the former state's time), free the host."""
    return (sets(LAST, "etime", *fields, reason=R.USER), DelCapacity())


_NOT_FOUND = (
    "VM running but it was not found. Restart and delete actions available or try to recover it"
    " manually"
)
E, A = Event, At

# fmt: off
ROWS: list[Row] = [
    # §3.3 Deploy (the RPC opens the record on the chosen host); PROLOG_RESUME after a stop.
    # NOTE: modern OpenNebula also deploys from HOLD and STOPPED (`onevm create --hold` then
    # `onevm deploy`); 1.4 deployed from PENDING only (a STOPPED VM was resumed first)
    *_rows((A.PENDING, A.HOLD), E.DEPLOY, A.PROLOG_RESUME, opens("stime", "pstime"),
           AddCapacity(), TmTransfer("resume"), when="after_stop"),
    *_rows((A.PENDING, A.HOLD), E.DEPLOY, A.PROLOG, opens("stime", "pstime"), AddCapacity(),
           TmTransfer("prolog")),
    *_rows(A.STOPPED, E.DEPLOY, A.PROLOG_RESUME, opens("stime", "pstime"), AddCapacity(),
           TmTransfer("resume")),
    *_rows(A.PROLOG, E.PROLOG_SUCCESS, A.BOOT, sets(LAST, "petime", "rstime"), VmmAction("DEPLOY")),
    *_rows((A.PROLOG_MIGRATE, A.PROLOG_RESUME), E.PROLOG_SUCCESS, A.BOOT,
           sets(LAST, "petime", "rstime"), VmmAction("RESTORE")),
    # NOTE: 1.4 folds RESTORE and MIGRATE replies into DEPLOY_SUCCESS/FAILURE; we keep them
    # apart so that a late reply to one action is never taken for the other
    *_rows(A.BOOT, E.DEPLOY_SUCCESS, A.RUNNING),
    *_rows(A.BOOT, E.RESTORE_SUCCESS, A.RUNNING),
    # §3.3 Failure at prolog, boot and epilog, and POLL e
    *_rows((A.PROLOG, A.PROLOG_MIGRATE, A.PROLOG_RESUME), E.PROLOG_FAILURE, A.FAILED,
           *_failed("petime")),
    *_rows(A.BOOT, E.DEPLOY_FAILURE, A.FAILED, *_failed("retime")),
    *_rows(A.BOOT, E.RESTORE_FAILURE, A.FAILED, *_failed("retime")),
    *_rows((A.EPILOG, A.EPILOG_STOP), E.EPILOG_FAILURE, A.FAILED, *_failed("eetime")),
    # §3.3 Shutdown
    *_rows(A.RUNNING, E.SHUTDOWN, A.SHUTDOWN, VmmAction("SHUTDOWN")),
    *_rows(A.SHUTDOWN, E.SHUTDOWN_SUCCESS, A.EPILOG, sets(LAST, "estime", "retime"),
           TmTransfer("epilog")),
    *_rows(A.EPILOG, E.EPILOG_SUCCESS, A.DONE, sets(LAST, "eetime", "etime"), DelCapacity(),
           *_DONE),
    *_rows(A.SHUTDOWN, E.SHUTDOWN_FAILURE, A.RUNNING, VmmAction("POLL"),
           message=f"Fail to shutdown VM. {_RUNNING_AGAIN}"),
    # §3.3 Cancel. NOTE: 1.4 sets no RETIME and leaves the VM's files on the host; onecloud
    # removes them with the TM delete after the VM is DONE (modern OpenNebula's cancel ends in
    # an epilog that deletes them): a DONE VM leaves nothing on a host; a failed delete is
    # logged (oned.log), the VM stays DONE
    *_rows(A.RUNNING, E.CANCEL, A.CANCEL, VmmAction("CANCEL")),
    *_rows(A.CANCEL, E.CANCEL_SUCCESS, A.DONE, sets(LAST, "etime", reason=R.CANCEL),
           DelCapacity(), *_DONE, TmTransfer("delete")),
    *_rows(A.CANCEL, E.CANCEL_FAILURE, A.RUNNING, VmmAction("POLL"),
           message=f"Fail to cancel VM. {_RUNNING_AGAIN}"),
    # §3.3 Stop, and resume to PENDING (the next deploy takes the PROLOG_RESUME row)
    *_rows(A.RUNNING, E.STOP, A.SAVE_STOP, VmmAction("SAVE")),
    *_rows(A.SAVE_STOP, E.SAVE_SUCCESS, A.EPILOG_STOP,
           sets(LAST, "estime", "retime", reason=R.STOP_RESUME), TmTransfer("stop")),
    *_rows(A.EPILOG_STOP, E.EPILOG_SUCCESS, A.STOPPED, sets(LAST, "eetime", "etime"),
           DelCapacity()),
    *_rows(A.STOPPED, E.RESUME, A.PENDING),
    # §3.3 Suspend, and resume on the same host in a copied record
    *_rows(A.RUNNING, E.SUSPEND, A.SAVE_SUSPEND, VmmAction("SAVE")),
    *_rows(A.SAVE_SUSPEND, E.SAVE_SUCCESS, A.SUSPENDED,
           sets(LAST, "retime", "etime", reason=R.STOP_RESUME), DelCapacity()),
    *_rows(A.SUSPENDED, E.RESUME, A.BOOT, opens("stime", "rstime", copy_of=LAST), AddCapacity(),
           VmmAction("RESTORE")),
    # §3.3 Save failure
    *_rows((A.SAVE_STOP, A.SAVE_SUSPEND), E.SAVE_FAILURE, A.RUNNING, VmmAction("POLL"),
           message=f"Fail to save VM state. {_RUNNING_AGAIN}"),
    # §3.3 Cold migrate: SAVE on the previous host, MV P:R H:R, RESTORE on the new one
    *_rows(A.RUNNING, E.MIGRATE, A.SAVE_MIGRATE, opens("stime"), AddCapacity(),
           VmmAction("SAVE", PREVIOUS)),
    *_rows(A.SAVE_MIGRATE, E.SAVE_SUCCESS, A.PROLOG_MIGRATE,
           sets(PREVIOUS, "etime", "retime", reason=R.USER), sets(LAST, "pstime"),
           DelCapacity(PREVIOUS), TmTransfer("migrate")),
    *_rows(A.SAVE_MIGRATE, E.SAVE_FAILURE, A.RUNNING, *_ROLLBACK,
           message=f"Fail to save VM state while migrating. {_RUNNING_AGAIN}"),
    # §3.3 Live migrate
    *_rows(A.RUNNING, E.LIVEMIGRATE, A.MIGRATE, opens("stime"), AddCapacity(),
           VmmAction("MIGRATE", PREVIOUS)),
    *_rows(A.MIGRATE, E.MIGRATE_SUCCESS, A.RUNNING, sets(LAST, "rstime"),
           sets(PREVIOUS, "etime", "retime", reason=R.USER), DelCapacity(PREVIOUS)),
    # NOTE: "life migrate" is OpenNebula's spelling in vm.log
    *_rows(A.MIGRATE, E.MIGRATE_FAILURE, A.RUNNING, *_ROLLBACK,
           message=f"Fail to life migrate VM. {_RUNNING_AGAIN}"),
    # §3.3 Restart: DEPLOY again on the same host
    *_rows(A.UNKNOWN, E.RESTART, A.BOOT, VmmAction("DEPLOY")),
    *_rows(A.BOOT, E.RESTART, A.BOOT, VmmAction("DEPLOY"),
           message="Sending BOOT command to VM again"),
    # NOTE: OpenNebula 3.x/4.x's reboot and reset: REBOOT (ACPI) or RESET (hard) to the VMM
    # driver, the VM stays RUNNING throughout (rows that change no state: no "New VM state"
    # line, no hook). A FAILURE keeps it RUNNING and polls, as a failed shutdown does; a reply
    # after the VM left RUNNING is ignored.
    *_rows(A.RUNNING, E.REBOOT, A.RUNNING, VmmAction("REBOOT"), message="Rebooting VM"),
    *_rows(A.RUNNING, E.RESET, A.RUNNING, VmmAction("RESET"), message="Resetting VM"),
    *_rows(A.RUNNING, E.REBOOT_SUCCESS, A.RUNNING, message="VM successfully rebooted."),
    *_rows(A.RUNNING, E.RESET_SUCCESS, A.RUNNING, message="VM successfully reset."),
    *_rows(A.RUNNING, E.REBOOT_FAILURE, A.RUNNING, VmmAction("POLL"),
           message=f"Fail to reboot VM. {_RUNNING_AGAIN}"),
    *_rows(A.RUNNING, E.RESET_FAILURE, A.RUNNING, VmmAction("POLL"),
           message=f"Fail to reset VM. {_RUNNING_AGAIN}"),
    # §3.2 Hold and release
    *_rows(A.PENDING, E.HOLD, A.HOLD),
    *_rows(A.HOLD, E.RELEASE, A.PENDING),
    # §1.5 POLL STATE, acted on in RUNNING and UNKNOWN only
    *_rows(A.RUNNING, E.POLL_RUNNING, A.RUNNING),
    *_rows(A.UNKNOWN, E.POLL_RUNNING, A.RUNNING, message="VM was now found, new state is RUNNING"),
    *_rows((A.RUNNING, A.UNKNOWN), E.POLL_SUSPENDED, A.SUSPENDED,
           sets(LAST, "retime", "etime", reason=R.STOP_RESUME), DelCapacity(),
           message="VM running but new state from monitor is PAUSED."),
    *_rows((A.RUNNING, A.UNKNOWN), E.POLL_FAILED, A.FAILED, *_failed("retime"),
           message="VM running but new state from monitor is ERROR."),
    *_rows((A.RUNNING, A.UNKNOWN), E.POLL_DELETED, A.UNKNOWN, message=_NOT_FOUND),
    *_rows(A.UNKNOWN, E.POLL_UNKNOWN, A.UNKNOWN),
    *_rows(A.RUNNING, E.POLL_UNKNOWN, A.RUNNING),
    # §3.4 Finalize outside ACTIVE. NOTE: FAILED keeps its ETIME; STOPPED leaves $VAR/<vid>
    *_rows((A.INIT, A.PENDING, A.HOLD, A.STOPPED), E.DELETE, A.DONE, *_DONE),
    # NOTE: OpenNebula 6's terminate(-hard) (1.4's shutdown and cancel) of a VM on no host
    # ends it as finalize does; 1.4 refused them outside ACTIVE/RUNNING
    *_rows((A.PENDING, A.HOLD, A.STOPPED), E.SHUTDOWN, A.DONE, *_DONE),
    *_rows((A.PENDING, A.HOLD, A.STOPPED), E.CANCEL, A.DONE, *_DONE),
    *_rows(A.SUSPENDED, E.DELETE, A.DONE, *_DONE, TmTransfer("delete")),
    *_rows(A.FAILED, E.DELETE, A.DONE, ReleaseLeases()),
    # §3.4 Finalize in ACTIVE: LCM DELETE, then the cleanup of the former LCM state, then DONE
    *_rows((A.PROLOG, A.PROLOG_RESUME), E.DELETE, A.DONE, *_deleted("petime"),
           *_DONE, DriverCancel("TM"), TmTransfer("delete")),
    *_rows((A.BOOT, A.RUNNING, A.UNKNOWN, A.SHUTDOWN, A.CANCEL), E.DELETE, A.DONE,
           *_deleted("retime"), *_DONE, DriverCancel("VMM"), VmmAction("CANCEL"),
           TmTransfer("delete")),
    *_rows(A.MIGRATE, E.DELETE, A.DONE, *_deleted("retime"),
           sets(PREVIOUS, "etime", "retime", reason=R.USER), DelCapacity(PREVIOUS), *_DONE,
           DriverCancel("VMM"), VmmAction("CANCEL"), VmmAction("CANCEL", PREVIOUS),
           TmTransfer("delete")),
    # NOTE: RETIME here as in 3.x; §3.4 names no time for SAVE_STOP/SAVE_SUSPEND
    *_rows((A.SAVE_STOP, A.SAVE_SUSPEND), E.DELETE, A.DONE, *_deleted("retime"),
           *_DONE, DriverCancel("VMM"), VmmAction("CANCEL"), TmTransfer("delete")),
    # NOTE: 1.4 neither closed the previous record nor freed the previous host here (a leak
    # fixed in 3.x); we do both so that capacity always balances
    *_rows(A.SAVE_MIGRATE, E.DELETE, A.DONE, *_deleted(),
           sets(PREVIOUS, "etime", "retime", reason=R.USER), DelCapacity(PREVIOUS), *_DONE,
           DriverCancel("VMM"), VmmAction("CANCEL", PREVIOUS), TmTransfer("delete_prev")),
    *_rows(A.PROLOG_MIGRATE, E.DELETE, A.DONE, *_deleted("petime"), *_DONE,
           DriverCancel("TM"), TmTransfer("delete"), TmTransfer("delete_prev")),
    *_rows((A.EPILOG, A.EPILOG_STOP), E.DELETE, A.DONE, *_deleted("eetime"),
           *_DONE, DriverCancel("TM"), TmTransfer("delete")),
]
# fmt: on

TABLE: dict[tuple[S, L, Event], tuple[Row, ...]] = {}
for _row in ROWS:  # guarded rows come first in ROWS, so they are tried first
    _key = (*_row.source, _row.event)
    TABLE[_key] = (*TABLE.get(_key, ()), _row)

HOOKS: dict[Pair, Literal["RUNNING", "SHUTDOWN", "STOP", "DONE", "FAILED"]] = {
    # reference §2 "Hooks": fired on a transition into the pair, never on staying in it
    At.RUNNING: "RUNNING",
    At.EPILOG: "SHUTDOWN",
    At.STOPPED: "STOP",
    At.DONE: "DONE",
    At.FAILED: "FAILED",
}
