"""Group commit: units of work that arrive together share one transaction (issue 18).

A unit is a ``write`` (run inside the store's transaction, given its connection), a ``then``
(run on the reactor thread once the write committed: the pools' changes, whose result the
caller gets) and an ``undo`` (run instead when the write failed: give back what the caller
reserved before submitting). Units submitted during one reactor turn are run together at the
next one (``call_later(0)``): one transaction, one commit, and only then each unit's ``then``
and its Deferred. Nothing is ever acknowledged before the commit that holds it.

A unit may instead be ``prepare``d: a function run at the flush, just before the transaction,
that returns the write (None: nothing to write). A deploy decides there what it writes, from
the VM as it is once the actions committed before it are in memory.

When the group's transaction fails, every unit is run again in a transaction of its own, so
that one bad unit (a constraint the checks could not see) fails alone and the others commit.

The store needs one method: ``run(writes)``, all the writes in one transaction, committed on
return, nothing written when it raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import defer

Write = Callable[[Any], object]


class GroupStore(Protocol):
    def run(self, writes: Sequence[Write]) -> None: ...


def _nothing(_: BaseException) -> None:
    pass


def _no_write(_: Any) -> None:
    pass


@dataclass
class Unit:
    write: Write | None
    then: Callable[[], object]
    undo: Callable[[BaseException], None] = _nothing
    done: defer.Deferred = field(default_factory=defer.Deferred)
    prepare: Callable[[], Write | None] | None = None


class CommitQueue:
    """Batches units of work into one transaction per reactor turn; see the module docstring.

    ``largest``: units in one transaction at most (the rest go in the next one, at once).
    """

    def __init__(
        self,
        store: GroupStore,
        call_later: Callable[..., Any],
        log: logging.Logger | None = None,
        largest: int = 500,
    ):
        self._store = store
        self._call_later = call_later
        self._log = log or logging.getLogger(__name__)
        self._largest = largest
        self._waiting: list[Unit] = []
        self._flush_call: Any = None
        self.groups = 0  # transactions committed, for the benchmarks and tests

    def submit(
        self,
        write: Write,
        then: Callable[[], object],
        undo: Callable[[BaseException], None] = _nothing,
    ) -> defer.Deferred:
        """A Deferred of ``then()``'s result, fired after the commit of ``write``; failed with
        the store's error (after ``undo(error)``) when the write could not be committed.

        Cancelling the Deferred (a client that went away) does not withdraw the unit: its
        write still commits and its ``then`` still runs, so memory follows the database.
        """
        return self._queue(Unit(write, then, undo))

    def submit_prepared(
        self,
        prepare: Callable[[], Write | None],
        then: Callable[[], object],
        undo: Callable[[BaseException], None] = _nothing,
    ) -> defer.Deferred:
        """As ``submit``, the write being ``prepare()``'s, called at the flush (again for
        the unit alone when its group failed); an exception there fails the unit alone."""
        return self._queue(Unit(None, then, undo, prepare=prepare))

    def _queue(self, unit: Unit) -> defer.Deferred:
        self._waiting.append(unit)
        if self._flush_call is None:
            self._flush_call = self._call_later(0, self.flush)
        return unit.done

    def __len__(self) -> int:
        return len(self._waiting)

    def flush(self) -> None:
        """Commit what is waiting now (oned's shutdown calls it too)."""
        self._flush_call = None
        while self._waiting:
            group, self._waiting = self._waiting[: self._largest], self._waiting[self._largest :]
            self._commit(group)

    def _commit(self, group: list[Unit]) -> None:
        writes = []
        for unit in list(group):
            try:
                write = unit.prepare() if unit.prepare is not None else unit.write
            except Exception as exc:
                group.remove(unit)
                self._failed(unit, exc)
                continue
            writes.append(write or _no_write)
        if not group:
            return
        try:
            self._store.run(writes)
        except Exception as exc:
            if len(group) == 1:
                self._failed(group[0], exc)
                return
            self._log.debug(f"A group of {len(group)} writes failed ({exc}): one at a time")
            for unit in group:
                self._commit([unit])
            return
        self.groups += 1
        for unit in group:
            self._committed(unit)

    @staticmethod
    def _committed(unit: Unit) -> None:
        try:
            result = unit.then()
        except Exception:
            unit.done.errback()
            return
        unit.done.callback(result)

    def _failed(self, unit: Unit, exc: Exception) -> None:
        try:
            unit.undo(exc)
        except Exception:
            self._log.exception("Undoing a failed write failed")
        unit.done.errback(exc)
