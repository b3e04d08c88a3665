"""poll_schedule: which VMs the VMM polls at each tick, spread over VM_POLLING_INTERVAL; pure.

A round takes the ids of the VMs that may be polled (RUNNING, UNKNOWN) when it starts and gives
them out over one interval, in that order: the VM at position ``i`` of ``n`` is due
``i * interval / n`` seconds into the round, so each tick hands out about
``n * period / interval`` of them, never all at once (100,000 RUNNING VMs after a start were
100,000 POLLs queued at one tick). The next round starts one interval after this one, so a VM
keeps its place and is polled about once per interval. A VM that starts running meanwhile
(`join`: a DEPLOY, RESTORE or MIGRATE answered) is polled at the next tick, then in the rounds
from the next one on, so its first figures come within a tick, not an interval. After a stall
(a busy reactor, a late tick) a tick hands out at most ``catch_up`` seconds' worth: the round
runs late rather than in a burst.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

CATCH_UP = 5.0  # seconds of a round one tick may hand out after a stall
JOINED_PER_TICK = 1000  # VMs that just started running polled at one tick, at most


class PollRounds:
    """Rounds of ``interval`` seconds over the pollable VMs, handed out tick by tick."""

    def __init__(self, interval: float, period: float = 1.0, catch_up: float = CATCH_UP):
        self.interval = interval
        self.period = period
        self.catch_up = max(catch_up, period)
        self._order: Sequence[int] = ()
        self._start = -math.inf
        self._next = 0  # position of the next VM to hand out
        self._joined: list[int] = []  # VMs that started running, polled at the next tick
        self.rounds = 0  # rounds started (tests, the benchmark)

    def join(self, vid: int) -> None:
        """``vid`` just started running: poll it at the next tick (then in the rounds)."""
        self._joined.append(vid)

    def take(self, now: float, pollable: Callable[[], Sequence[int]]) -> Sequence[int]:
        """The ids due at the tick at ``now`` (up to the next tick): the VMs that joined
        since the last tick, then the round's share; ``pollable()`` is called at the start of
        each round for the ids, in the order to poll them."""
        joined, self._joined = self._joined[:JOINED_PER_TICK], self._joined[JOINED_PER_TICK:]
        return (*joined, *self._share(now, pollable)) if joined else self._share(now, pollable)

    def _share(self, now: float, pollable: Callable[[], Sequence[int]]) -> Sequence[int]:
        if self._next >= len(self._order) and now >= self._start + self.interval:
            self._order, self._start, self._next = tuple(pollable()), now, 0
            self.rounds += 1
        count = len(self._order)
        if self._next >= count:
            return ()
        share = count / self.interval if self.interval > 0 else count
        due = math.ceil((now - self._start + self.period) * share)
        limit = self._next + math.ceil(self.catch_up * share)
        end = max(self._next, min(count, due, limit))
        taken, self._next = self._order[self._next : end], end
        return taken
