"""What to do with a VM found in a transient LCM state: after a restart of oned (reconciliation)
or when oneadmin forces it (``one.vm.recover``). Pure: a table over ``(state, lcm_state)``.

A transient state waits for one driver request. Reconciliation either sends that request again
(drivers make every action idempotent: DEPLOY of a domain that exists, a CLONE whose target is
complete, a DELETE of what is gone succeed) or, where sending it again could do harm (SAVE,
MIGRATE), asks the hypervisor with POLL and follows what it says. ``recover`` turns the
operator's word into the event the request's own reply would have been.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oned.lifecycle_effects import PREVIOUS, HostSide, TmTransfer, VmmAction
from oned.lifecycle_table import Event
from oned.records import History, Vm
from oned.states import HistoryReason, LcmState, VmState

E = Event


@dataclass(frozen=True)
class Resend:
    """Send the request in flight again; its reply moves the VM on as it would have."""

    effect: VmmAction | TmTransfer

    def describe(self) -> str:
        if isinstance(self.effect, TmTransfer):
            return f"re-sending the {self.effect.script} transfer"
        return f"re-sending {self.effect.action}"


@dataclass(frozen=True)
class Poll:
    """POLL the VM on ``host`` and follow the answer: STATE=a -> ``running``, STATE=d ->
    ``deleted``, anything else (or no answer) -> ``otherwise``."""

    host: HostSide
    running: Event
    deleted: Event
    otherwise: Event

    def describe(self) -> str:
        return "polling the hypervisor"

    def event(self, state: str | None) -> Event:
        """The event for a POLL answer's STATE (None: the POLL failed)."""
        return {"a": self.running, "d": self.deleted}.get(state or "", self.otherwise)


Decision = Resend | Poll


@dataclass(frozen=True)
class Transient:
    """A transient LCM state: the request it waits for, and that request's two outcomes."""

    retry: VmmAction | TmTransfer
    success: Event
    failure: Event
    poll: Poll | None = None  # reconcile by polling instead of re-sending ``retry``


L = LcmState
_SAVE_POLL = Poll("current", E.SAVE_FAILURE, E.SAVE_SUCCESS, E.SAVE_FAILURE)
TRANSIENT: dict[LcmState, Transient] = {
    L.PROLOG: Transient(TmTransfer("prolog"), E.PROLOG_SUCCESS, E.PROLOG_FAILURE),
    L.PROLOG_MIGRATE: Transient(TmTransfer("migrate"), E.PROLOG_SUCCESS, E.PROLOG_FAILURE),
    L.PROLOG_RESUME: Transient(TmTransfer("resume"), E.PROLOG_SUCCESS, E.PROLOG_FAILURE),
    L.BOOT: Transient(VmmAction("DEPLOY"), E.DEPLOY_SUCCESS, E.DEPLOY_FAILURE),
    L.SHUTDOWN: Transient(VmmAction("SHUTDOWN"), E.SHUTDOWN_SUCCESS, E.SHUTDOWN_FAILURE),
    L.CANCEL: Transient(VmmAction("CANCEL"), E.CANCEL_SUCCESS, E.CANCEL_FAILURE),
    L.EPILOG: Transient(TmTransfer("epilog"), E.EPILOG_SUCCESS, E.EPILOG_FAILURE),
    L.EPILOG_STOP: Transient(TmTransfer("stop"), E.EPILOG_SUCCESS, E.EPILOG_FAILURE),
    # A SAVE sent twice could save a domain that the first one already saved and destroyed:
    # ask instead. Still running: the save did not happen (back to RUNNING, as a SAVE
    # FAILURE does); gone: it did.
    L.SAVE_STOP: Transient(VmmAction("SAVE"), E.SAVE_SUCCESS, E.SAVE_FAILURE, _SAVE_POLL),
    L.SAVE_SUSPEND: Transient(VmmAction("SAVE"), E.SAVE_SUCCESS, E.SAVE_FAILURE, _SAVE_POLL),
    L.SAVE_MIGRATE: Transient(
        VmmAction("SAVE", PREVIOUS), E.SAVE_SUCCESS, E.SAVE_FAILURE,
        Poll(PREVIOUS, E.SAVE_FAILURE, E.SAVE_SUCCESS, E.SAVE_FAILURE),
    ),
    # A live migration: running on the new host means it arrived; otherwise roll back (the
    # MIGRATE FAILURE row polls the old host).
    L.MIGRATE: Transient(
        VmmAction("MIGRATE", PREVIOUS), E.MIGRATE_SUCCESS, E.MIGRATE_FAILURE,
        Poll("current", E.MIGRATE_SUCCESS, E.MIGRATE_FAILURE, E.MIGRATE_FAILURE),
    ),
}  # fmt: skip
"""Every ACTIVE LCM state but RUNNING and UNKNOWN, which VM polling already watches."""

RECOVER_OPERATIONS = {0: "failure", 1: "success", 2: "retry", 3: "delete"}
"""one.vm.recover's operation numbers, as modern OpenNebula's."""


def transient(state: int, lcm_state: int) -> Transient | None:
    """The entry of an ACTIVE VM in a transient LCM state; None for any other VM."""
    if state != VmState.ACTIVE or lcm_state not in _TRANSIENT_VALUES:
        return None
    return TRANSIENT[LcmState(lcm_state)]


def retry_effect(vm: Vm) -> VmmAction | TmTransfer | None:
    """The request ``vm`` waits for, to send again; None when it waits for none.

    BOOT waits for DEPLOY after a prolog, but for RESTORE after a cold migration, a resume from
    STOPPED (the previous stay ended STOP_RESUME) or from SUSPENDED: the history tells which.
    A RESTART from UNKNOWN of a VM that came back by RESTORE is taken for a RESTORE (an
    ambiguity the history does not settle)."""
    entry = transient(vm.state, vm.lcm_state)
    if entry is None:
        return None
    if vm.lcm_state == LcmState.BOOT and _restored(vm.history):
        return VmmAction("RESTORE")
    return entry.retry


def decide(vm: Vm) -> Decision | None:
    """What reconciliation does for ``vm`` at start; None: nothing (a stable state)."""
    entry = transient(vm.state, vm.lcm_state)
    if entry is None:
        return None
    if entry.poll is not None:
        return entry.poll
    effect = retry_effect(vm)
    assert effect is not None
    return Resend(effect)


def recover_event(vm: Vm, success: bool) -> Event | None:
    """The reply event ``onevm recover --success/--failure`` stands for; None: not transient."""
    entry = transient(vm.state, vm.lcm_state)
    if entry is None:
        return None
    if vm.lcm_state == LcmState.BOOT and _restored(vm.history):
        return E.RESTORE_SUCCESS if success else E.RESTORE_FAILURE
    return entry.success if success else entry.failure


def _restored(history: Sequence[History]) -> bool:
    """A BOOT that waits for RESTORE: the previous stay ended STOP_RESUME (stop or suspend),
    or ended by the user with a prolog on this host (a cold migration's PROLOG_MIGRATE)."""
    if len(history) < 2:
        return False
    previous, last = history[-2], history[-1]
    if previous.reason == HistoryReason.STOP_RESUME:
        return True
    return previous.reason == HistoryReason.USER and last.pstime != 0


_TRANSIENT_VALUES = frozenset(int(s) for s in TRANSIENT)
