"""The VM life cycle (LCM, the life-cycle manager, and DM, the dispatch manager, of OpenNebula
1.4): a pure ``step`` over the transition table of ``oned.lifecycle_table`` (reference §3).

The shell loads a VM, calls ``step(vm, event, now=..., host=...)``, and gets either an
``Outcome`` or ``Ignored``. It applies the outcome's state, history changes and ``vm_etime`` and
the ``in_transaction`` effects (capacity, leases) in one transaction, guarded by a
compare-and-swap on ``(prev_state, prev_lcm_state)``; after the commit it sends the remaining
effects in order (driver requests, then hooks). ``Ignored`` is a late or duplicated driver
reply: log it and drop it. The API asks ``check()`` before it acts, which reads the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from oned.errors import ActionNotAllowed, BadCall
from oned.lifecycle_effects import (
    CURRENT,
    LAST,
    NOW,
    PREVIOUS,
    AddCapacity,
    DelCapacity,
    DriverCancel,
    Effect,
    HistoryChange,
    HostRef,
    OpenHistory,
    ReleaseLeases,
    RunHooks,
    SetHistory,
    TmTransfer,
    VmmAction,
)
from oned.lifecycle_table import (
    ACTIVE_PAIRS,
    HOOKS,
    NEEDS_HOST,
    ROWS,
    TABLE,
    USER_ACTIONS,
    VALID_PAIRS,
    At,
    Event,
    Row,
)
from oned.records import History, Vm
from oned.states import HistoryReason, LcmState, VmState

__all__ = [
    "ACTIVE_PAIRS",
    "ALLOCATE_EFFECTS",
    "ALLOWED_IN",
    "CURRENT",
    "LAST",
    "PREVIOUS",
    "ROWS",
    "TABLE",
    "USER_ACTIONS",
    "VALID_PAIRS",
    "AddCapacity",
    "At",
    "DelCapacity",
    "DriverCancel",
    "Effect",
    "Event",
    "HistoryChange",
    "HostRef",
    "Ignored",
    "OpenHistory",
    "Outcome",
    "ReleaseLeases",
    "RunHooks",
    "SetHistory",
    "TmTransfer",
    "VmmAction",
    "allowed",
    "applied",
    "apply_history",
    "check",
    "poll_event",
    "state_name",
    "step",
    "tm_event",
    "vmm_event",
]  # fmt: skip

ALLOCATE_EFFECTS = (RunHooks("CREATE"),)  # what one.vm.allocate runs after its commit


class HistoryView(Protocol):
    @property
    def reason(self) -> int: ...


class VmView(Protocol):
    """What ``step`` reads of a VM; ``oned.records.Vm`` is one."""

    @property
    def id(self) -> int: ...
    @property
    def state(self) -> int: ...
    @property
    def lcm_state(self) -> int: ...
    @property
    def history(self) -> Sequence[HistoryView]: ...


@dataclass(frozen=True)
class Outcome:
    """The VM after an event: its new pair, the pair it left (the compare-and-swap guard and the
    hooks' "previous state"), history changes in order, effects in order, the VM's new ETIME
    (None: unchanged) and lines for vm.log."""

    state: VmState
    lcm_state: LcmState
    prev_state: VmState
    prev_lcm_state: LcmState
    history: tuple[HistoryChange, ...] = ()
    effects: tuple[Effect, ...] = ()
    vm_etime: int | None = None
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ignored:
    """A driver outcome the VM is not waiting for (late, duplicated): log ``reason``, drop it."""

    reason: str


def step(
    vm: VmView, event: Event | str, *, now: int, host: HostRef | None = None
) -> Outcome | Ignored:
    """The outcome of ``event`` for ``vm`` at time ``now``. A user action the state does not
    allow raises ActionNotAllowed (as ``check``); a driver outcome that does not fit is Ignored.
    ``host`` is where deploy, migrate and livemigrate take the VM."""
    event = Event(event)
    source = _pair(vm.state, vm.lcm_state)
    rows = TABLE.get((*source, event), ()) if source else ()
    if not rows:
        if event in USER_ACTIONS:
            check(vm.state, vm.lcm_state, event, vm.id)
        now_in = state_name(vm.state, vm.lcm_state)
        return Ignored(f"{event} ignored: VM {vm.id} is {now_in}, expected in {ALLOWED_IN[event]}")
    if event in NEEDS_HOST and host is None:
        raise ValueError(f"{event} of VM {vm.id} needs the host to go to")
    row = next(r for r in rows if r.when is None or _GUARDS[r.when](vm))
    return _outcome(row, now, host)


def allowed(state: int, lcm_state: int, action: Event | str) -> bool:
    """True when the table has a row for ``action`` (a user action or a driver outcome) here."""
    source = _pair(state, lcm_state)
    return source is not None and action in _EVENT_VALUES and (*source, Event(action)) in TABLE


def check(
    state: int, lcm_state: int, action: Event | str, vid: int, method: str = "one.vm.action"
) -> None:
    """Raise BadCall for an unknown action, ActionNotAllowed (0x800) for a wrong state."""
    if action not in _EVENT_VALUES or Event(action) not in USER_ACTIONS:
        known = ", ".join(sorted(USER_ACTIONS))
        raise BadCall(f"[{method}] unknown action {action!r}: one of {known}")
    event = Event(action)
    if not allowed(state, lcm_state, event):
        raise ActionNotAllowed(
            f"[{method}] VM {vid} is {state_name(state, lcm_state)}: "
            f"{event} is allowed in {ALLOWED_IN[event]}"
        )


def state_name(state: int, lcm_state: int) -> str:
    """The state as messages name it: PENDING, or ACTIVE/RUNNING when active; numbers when
    unknown."""
    if state not in _VM_VALUES:
        return f"state {state}"
    if state != VmState.ACTIVE:
        return VmState(state).name
    lcm = LcmState(lcm_state).name if lcm_state in _LCM_VALUES else str(lcm_state)
    return f"ACTIVE/{lcm}"


# -- Driver replies to events (reference §1.5, §1.6) ------------------------------------------


def vmm_event(action: str, success: bool) -> Event | None:
    """The event of a VMM reply line (``SAVE SUCCESS 7`` -> SAVE_SUCCESS); None for POLL."""
    if action not in _VMM_ACTIONS:
        return None
    return Event(f"{action}_{'SUCCESS' if success else 'FAILURE'}")


def tm_event(state: int, lcm_state: int, success: bool) -> Event | None:
    """The event of a ``TRANSFER`` reply, by the VM's state (§1.6). None: "Wrong state in TM
    answer", which is what a reply to a delete script always gets."""
    pair = _pair(state, lcm_state)
    kind = _TM_KINDS.get(pair) if pair else None
    return None if kind is None else Event(f"{kind}_{'SUCCESS' if success else 'FAILURE'}")


def poll_event(state: str | None) -> Event:
    """The event of a POLL reply's ``STATE`` value (a, p, e, d; ``-`` or none: no change)."""
    return _POLL_STATES.get(state or "-", Event.POLL_UNKNOWN)


# -- Applying an outcome to plain records (what the shell commits) ------------------------------


def applied(vm: Vm, outcome: Outcome) -> Vm:
    """A copy of ``vm`` after ``outcome``; history records no change names are shared."""
    return replace(
        vm,
        state=outcome.state,
        lcm_state=outcome.lcm_state,
        prev_state=outcome.prev_state,
        prev_lcm_state=outcome.prev_lcm_state,
        etime=vm.etime if outcome.vm_etime is None else outcome.vm_etime,
        history=apply_history(vm.id, vm.history, outcome.history),
    )


def apply_history(
    vid: int, history: Sequence[History], changes: Sequence[HistoryChange]
) -> list[History]:
    """``history`` with ``changes`` applied in order; "last" and "previous" are read anew after
    each change, so a record opened by one change is "last" for the next."""
    records = list(history)
    for change in changes:
        if isinstance(change, OpenHistory):
            records.append(_opened(vid, records, change))
        else:
            index = -1 if change.record == LAST else -2
            fields: dict[str, Any] = dict(change.values)
            records[index] = replace(records[index], **fields)
    return records


def _opened(vid: int, records: list[History], change: OpenHistory) -> History:
    seq = records[-1].seq + 1 if records else 0
    if change.copy_of is not None:
        was = records[-1 if change.copy_of == LAST else -2]
        host = HostRef(was.hid, was.host_name, was.vm_mad, was.tm_mad, was.vm_dir)
    elif change.host is not None:
        host = change.host
    else:
        raise ValueError(f"VM {vid}: a new history record needs a host")
    record = History(vid, seq, host.name, host.hid, host.vm_dir, host.vm_mad, host.tm_mad)
    fields: dict[str, Any] = dict(change.values)
    return replace(record, **fields)


# -- Internals ---------------------------------------------------------------------------------

_VM_VALUES = frozenset(s.value for s in VmState)
_LCM_VALUES = frozenset(s.value for s in LcmState)
_EVENT_VALUES = frozenset(e.value for e in Event) | {"finalize"}
_VMM_ACTIONS = frozenset(
    {"DEPLOY", "SHUTDOWN", "CANCEL", "SAVE", "RESTORE", "MIGRATE", "REBOOT", "RESET"}
)
_TM_KINDS = {
    At.PROLOG: "PROLOG",
    At.PROLOG_MIGRATE: "PROLOG",
    At.PROLOG_RESUME: "PROLOG",
    At.EPILOG: "EPILOG",
    At.EPILOG_STOP: "EPILOG",
}
_POLL_STATES = {
    "a": Event.POLL_RUNNING,
    "p": Event.POLL_SUSPENDED,
    "e": Event.POLL_FAILED,
    "d": Event.POLL_DELETED,
}


def _after_stop(vm: VmView) -> bool:
    """§3.3 Deploy: the previous stay ended with STOP_RESUME, so the images are on the FE."""
    return bool(vm.history) and vm.history[-1].reason == HistoryReason.STOP_RESUME


_GUARDS = {"after_stop": _after_stop}


def _pair(state: int, lcm_state: int) -> tuple[VmState, LcmState] | None:
    if state not in _VM_VALUES or lcm_state not in _LCM_VALUES:
        return None
    return VmState(state), LcmState(lcm_state)


def _outcome(row: Row, now: int, host: HostRef | None) -> Outcome:
    history = tuple(_resolved(change, now, host) for change in row.history)
    moved = row.target != row.source
    hooks = (RunHooks(HOOKS[row.target]),) if moved and row.target in HOOKS else ()
    log: tuple[str, ...] = (row.message,) if row.message else ()
    if moved:
        log += (f"New VM state is {state_name(*row.target).removeprefix('ACTIVE/')}",)
    etime = now if row.vm_etime else None
    return Outcome(*row.target, *row.source, history, row.effects + hooks, etime, log)


def _resolved(change: HistoryChange, now: int, host: HostRef | None) -> HistoryChange:
    values = tuple((name, now if value == NOW else value) for name, value in change.values)
    if isinstance(change, SetHistory):
        return replace(change, values=values)
    return replace(change, values=values, host=None if change.copy_of else host)


def _where(event: Event) -> str:
    """Where ``event`` is allowed, for messages: "ACTIVE/BOOT or ACTIVE/UNKNOWN"."""
    pairs = sorted((s, lcm) for s, lcm, e in TABLE if e == event)
    active = [p for p in pairs if p[0] == VmState.ACTIVE]
    whole = len(active) == len(ACTIVE_PAIRS)
    names = [state_name(*p) for p in pairs if p[0] != VmState.ACTIVE or not whole]
    if whole:
        names.insert(sum(s < VmState.ACTIVE for s, _ in pairs), "ACTIVE")
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


ALLOWED_IN = {event: _where(event) for event in Event}
