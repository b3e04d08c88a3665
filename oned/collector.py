"""How often oned lets CPython's cyclic garbage collector walk everything (issue 18); pure.

CPython collects its oldest generation (a "full" collection: every tracked object not frozen)
whenever the objects promoted into it since the last one number a quarter of those it held
then. oned's pools are that generation, and each VM allocated adds a few hundred tracked
objects (the record, its template's dicts and lists, its history). So while VMs are allocated
the full collections come one after another, each longer than the last: 5 of them during 10,000
allocations took 0.85 s of oned's 4.6 s of CPU, up to 0.25 s each, and every one is a pause of
the reactor (nothing is answered meanwhile). The same happens in a steady state with churn
(VMs created and deleted): a full walk every few thousand allocations.

oned keeps CPython's rule but spaces the full collections out: after one ends, the next may
not start before ``1 / share`` times its duration has passed (at least ``least`` seconds), so
full walks take at most ``share`` (1 %) of oned's time. Meanwhile generation 2's threshold is
held out of reach; the young generations are collected as usual (the short-lived cycles of a
request, Deferreds and Failures, die there). ``tick`` (called every few seconds by the reactor)
gives the threshold back once the pause is over, and CPython's own rule then decides as before:
nothing is collected later than ``least`` seconds plus the wait for the rule, and no object is
frozen (cyclic garbage is always found in the end).

The callback only records times and sets an integer threshold: it runs inside whatever
allocation triggered the collection, so it must not touch the reactor.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

HELD = 1 << 30  # generation 2's threshold while a pause runs: never reached


class FullCollections:
    """Spaces CPython's automatic full collections out (see the module)."""

    def __init__(
        self,
        share: float = 0.01,
        least: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        collector: Any = gc,
    ):
        self._share, self._least, self._clock, self._gc = share, least, clock, collector
        self._threshold = collector.get_threshold()[2]
        self._began = 0.0
        self._until: float | None = None  # the pause ends then; None: not holding
        self.collections = 0  # full collections seen, for the tests and the log
        self.seconds = 0.0  # their total duration

    def install(self) -> None:
        self._gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in self._gc.callbacks:
            self._gc.callbacks.remove(self._callback)
        self.tick(force=True)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        now = self._clock()
        if phase == "start":
            self._began = now
            return
        took = now - self._began
        self.collections += 1
        self.seconds += took
        self._until = now + max(self._least, took / self._share)
        young, middle, _ = self._gc.get_threshold()
        self._gc.set_threshold(young, middle, HELD)

    def tick(self, force: bool = False) -> None:
        """Give generation 2 its threshold back once the pause is over."""
        if self._until is None or (not force and self._clock() < self._until):
            return
        self._until = None
        young, middle, _ = self._gc.get_threshold()
        self._gc.set_threshold(young, middle, self._threshold)

    @property
    def holding(self) -> bool:
        return self._until is not None
