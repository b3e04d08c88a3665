"""transition_batch: the driver outcomes of one reactor turn committed in one transaction.

The dummy drivers (and a busy real one) answer dozens of requests per read; each answer is a
transition (PROLOG -> BOOT, BOOT -> RUNNING) that used to be a transaction of its own, whose
commit is ~30 % of its cost. ``TransitionBatch`` queues them (``add``) and, at the end of the
reactor turn (``call_later(0)``), writes them all in one transaction (``Store.run`` of one
``Store.vm_update`` write each: a compare-and-swap on the VM's old state as ``update_vm``).
Only then do the after-commit effects (capacity, the next driver request, hooks, vm.log) run,
in arrival order.

Nothing is acknowledged before the commit: a driver outcome is nobody's answer, and on kill -9
before the flush the VM is still in the state the outcome would have left, so reconciliation at
start sends its request again. An outcome whose VM changed meanwhile (a user action in the same
turn, whose reply must follow its own commit) is stepped again on the VM as it is now, exactly
as if it had arrived after that action. A store without ``vm_update`` gets one ``update_vm``
per outcome, still in order, at the end of the turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from oned import lifecycle as lc
from oned.records import History, Vm
from oned.store.errors import StoreError

Lease = Any  # oned.vnet.Lease; the store takes them as they come


@dataclass
class Pending:
    """One stepped outcome waiting for the commit: ``new`` replaces ``vm`` if the CAS holds."""

    vm: Vm
    new: Vm
    outcome: lc.Outcome
    event: lc.Event
    history: Sequence[History]
    released: Sequence[Lease]

    def row(self) -> tuple[Vm, tuple[int, int], Sequence[History], Sequence[Lease]]:
        """What ``Store.update_vm`` takes for it: VM, expected pair, history, leases."""
        return self.new, (self.vm.state, self.vm.lcm_state), self.history, self.released


class TransitionBatch:
    """Queue of driver outcomes, flushed once per reactor turn.

    ``store`` writes, ``call_later`` is ``reactor.callLater``; ``current(vid)`` is the pool's
    VM now; ``done(pending)`` runs the after-commit part; ``again(pending)`` steps an outcome
    anew (its VM changed before the flush); ``failed(pending, error)`` handles a refused
    commit (the store is restarting: nothing was written).
    """

    def __init__(
        self,
        store: Any,
        call_later: Callable[..., Any],
        current: Callable[[int], Vm | None],
        done: Callable[[Pending], None],
        again: Callable[[Pending], None],
        failed: Callable[[Pending, StoreError], None],
    ):
        self._store, self._call_later, self._current = store, call_later, current
        self._done, self._again, self._failed = done, again, failed
        self._queue: list[Pending] = []
        self.flushes = 0  # transactions written (the benchmark reads them)

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, pending: Pending) -> None:
        if not self._queue:
            self._call_later(0, self.flush)
        self._queue.append(pending)

    def flush(self) -> None:
        """Commit the queue; outcomes whose VM moved on meanwhile are stepped again."""
        queue, self._queue = self._queue, []
        ready, stale, taken = [], [], set()
        for pending in queue:
            vid = pending.vm.id
            fresh = vid not in taken and self._current(vid) is pending.vm
            (ready if fresh else stale).append(pending)
            taken.add(vid)
        if ready:
            self._commit(ready)
        for pending in stale:
            self._again(pending)

    def _commit(self, ready: list[Pending]) -> None:
        results = self._write(ready)
        if any(r is True for r in results):
            self.flushes += 1
        for pending, result in zip(ready, results, strict=True):
            if isinstance(result, StoreError):
                self._failed(pending, result)
            else:
                (self._done if result else self._again)(pending)

    def _write(self, ready: list[Pending]) -> list[bool | StoreError]:
        """Per outcome: saved, CAS refused (False), or the store's error (nothing written)."""
        if hasattr(self._store, "vm_update") and hasattr(self._store, "run"):
            saved: list[bool] = []
            writes = [
                self._store.vm_update(*p.row(), result=saved.append, known=p.vm.history)
                for p in ready
            ]
            try:
                self._store.run(writes)
            except StoreError as exc:
                return [exc] * len(ready)
            return list(saved)
        results: list[bool | StoreError] = []
        for pending in ready:
            vm, expect, history, released = pending.row()
            try:
                results.append(
                    self._store.update_vm(vm, expect=expect, history=history, released=released)
                )
            except StoreError as exc:  # the database is away: the rest would fail as well
                return results + [exc] * (len(ready) - len(results))
        return results
