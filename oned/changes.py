"""The change marks behind one.system.changes, and the calls waiting for the next change; pure.

Every change of a pooled object (user, host, VM, network, image) takes the next number of one
sequence and leaves a mark (kind, id, and for a removal the owner) of 8 bytes in a ring of
``limit`` marks (800 KB for the default 100,000). "What changed after S" walks the marks
after S: its cost is the number of changes, never the size of a pool, and the memory is the
ring's, whatever the number of objects. A caller whose S fell out of the ring, is ahead of the
sequence, or comes from another epoch (oned restarted, or the sequence ran out of 32-bit
numbers) must read the pools again (a reset).

``Waiters`` holds the calls waiting for a change: no thread, no polling. A change schedules one
check of every waiter in the next reactor turn (however many changes that turn makes); a waiter
that sees nothing it may see keeps waiting, until its own timer answers it.
"""

from __future__ import annotations

import secrets
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("VM", "HOST", "VNET", "IMAGE", "USER")  # mark kinds: the reply's pools, in order
VM, HOST, VNET, IMAGE, USER = range(len(KINDS))
EVERYONE = -1  # the owner of a removed host, or of a network or image that was public
ADMIN_ONLY = -2  # the owner of a removal, when a uid does not fit in a mark (>= 2**28 - 2)
_OWNER_CODES = 2**28  # a removal's owner in a mark: uid + 2, 1 everyone, 0 oneadmin only
MARKS = 100_000
MAX_WAITERS = 1000
SEQ_MAX = 2**31 - 1  # XML-RPC integers are 32-bit: past this, a new epoch
_START = 2**28  # an epoch starts at a random number below this


@dataclass
class Changed:
    """What changed after a sequence number: (kind, id) pairs, in the order of their last
    change, and the owners of those removed."""

    keys: dict[tuple[int, int], None] = field(default_factory=dict)
    removed: dict[tuple[int, int], int] = field(default_factory=dict)


class ChangeLog:
    """The sequence and the ring of its last ``limit`` marks. ``on_mark`` (when set) is called
    after each mark."""

    def __init__(self, limit: int = MARKS) -> None:
        self.limit = limit
        # a mark, 8 bytes: id << 32 | owner code << 4 | kind << 1 | removed (oned.changes)
        self._marks = array("q", bytes(8 * limit))
        self.on_mark: Callable[[], None] | None = None
        self.epoch = ""
        self.first = self.seq = 0
        self.new_epoch()

    def new_epoch(self) -> None:
        """A new random token and starting number: every earlier ``since`` resets."""
        self.epoch = secrets.token_hex(8)
        self.first = self.seq = 1 + secrets.randbelow(_START)

    def mark(self, kind: int, oid: int, owner: int | None = None) -> None:
        """``oid`` of ``kind`` changed (``owner`` given: it was removed)."""
        if self.seq >= SEQ_MAX:
            self.new_epoch()
        seq = self.seq = self.seq + 1
        if owner is None:
            self._marks[seq % self.limit] = oid << 32 | kind << 1
        else:
            code = owner + 2 if owner + 2 < _OWNER_CODES else 0
            self._marks[seq % self.limit] = oid << 32 | code << 4 | kind << 1 | 1
        if self.on_mark is not None:
            self.on_mark()

    def remembers(self, since: int, epoch: str = "") -> bool:
        """Whether the marks after ``since`` are all still here (else the caller resets)."""
        if epoch and epoch != self.epoch:
            return False
        return max(self.first, self.seq - self.limit) <= since <= self.seq

    def since(self, since: int) -> Changed:
        """The changes after ``since`` (which ``remembers``), each object once."""
        found = Changed()
        marks, limit = self._marks, self.limit
        for seq in range(since + 1, self.seq + 1):
            mark = marks[seq % limit]
            key = ((mark >> 1) & 7, mark >> 32)
            found.keys.pop(key, None)
            found.keys[key] = None
            if mark & 1:
                code = (mark >> 4) & (_OWNER_CODES - 1)
                found.removed[key] = code - 2 if code else ADMIN_ONLY
        return found


class Waiter:
    """One waiting call: ``check()`` answers it and returns True when it sees a change;
    ``expire()`` answers it with no changes. Each is called at most once with True."""

    def __init__(self, check: Callable[[], bool], expire: Callable[[], None]) -> None:
        self.check = check
        self.expire = expire
        self.timer: Any = None


class TooManyWaiters(Exception):
    pass


class Waiters:
    """At most ``limit`` waiting calls, each answered by a change it sees, its timer, or
    ``close`` (oned stopping)."""

    def __init__(
        self, log: ChangeLog, call_later: Callable[..., Any], limit: int = MAX_WAITERS
    ) -> None:
        self._log = log
        self._call_later = call_later  # reactor.callLater (task.Clock's in tests)
        self.limit = limit
        self._waiting: dict[Waiter, None] = {}
        self._scheduled = False

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, waiter: Waiter, seconds: float) -> None:
        """Wait until a change ``waiter`` sees, or ``seconds``; TooManyWaiters when full."""
        if len(self._waiting) >= self.limit:
            raise TooManyWaiters(f"{self.limit} calls are already waiting")
        waiter.timer = self._call_later(seconds, self._expire, waiter)
        self._waiting[waiter] = None
        self._log.on_mark = self._schedule

    def cancel(self, waiter: Waiter) -> None:
        """Forget ``waiter`` without answering it (its connection is gone)."""
        if self._waiting.pop(waiter, 0) is None:
            _stop(waiter)

    def close(self) -> None:
        """Answer every waiter with no changes (oned is stopping)."""
        for waiter in list(self._waiting):
            self._expire(waiter)

    def _expire(self, waiter: Waiter) -> None:
        if self._waiting.pop(waiter, 0) is None:
            _stop(waiter)
            waiter.expire()

    def _schedule(self) -> None:
        """The first change of a turn: check the waiters once, in the next turn."""
        self._log.on_mark = None
        if not self._scheduled:
            self._scheduled = True
            self._call_later(0, self._wake)

    def _wake(self) -> None:
        self._scheduled = False
        seen = self._log.seq
        for waiter in list(self._waiting):
            if waiter in self._waiting and waiter.check():
                del self._waiting[waiter]
                _stop(waiter)
        if self._waiting:
            self._log.on_mark = self._schedule
            if self._log.seq != seen:  # an answer changed something: check again
                self._schedule()


def _stop(waiter: Waiter) -> None:
    timer, waiter.timer = waiter.timer, None
    if timer is not None and timer.active():
        timer.cancel()
