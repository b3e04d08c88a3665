"""mad: oned's end of a driver process (a MAD, in OpenNebula's words).

A ``DriverChannel`` starts one driver executable with an explicit environment, sends ``INIT``
and waits for ``INIT SUCCESS``, matches reply lines to requests by action and id, copies ``LOG``
lines into oned.log under the driver's name, hands ``PROGRESS`` lines to ``on_progress``, bounds
how many requests are in flight, times out every request (counted from its write to the driver,
not while it waits in the queue), restarts a driver that dies (with back-off) and re-issues
what it had in flight, and sends ``FINALIZE`` at shutdown. The wire is OpenNebula 2.0's
(reference §1.1, §1.2). The process's life (spawn, INIT, restart, stop with a grace period) is
``oned/mad_process.py``; this module is the requests and the lines.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from drivers.protocol import encode_words
from oned.mad_process import (
    STOP_GRACE,
    DriverCancelled,
    DriverProcess,
    DriverStopping,
    DriverTimeout,
    DriverUnavailable,
    find_executable,
)

# Re-exported: oned's managers (and oned/drivers.py's STOP_GRACE, find_executable) and the
# tests import these from oned.mad.
__all__ = [
    "STOP_GRACE",
    "DriverCancelled",
    "DriverChannel",
    "DriverStopping",
    "DriverTimeout",
    "DriverUnavailable",
    "Reply",
    "find_executable",
    "parse_reply",
]

_COUNT = re.compile(r"[0-9]{1,20}")  # a PROGRESS line's byte counts


@dataclass(frozen=True)
class Reply:
    """A driver's answer: ``ok`` for SUCCESS, ``info`` the rest of the line (``-`` -> "")."""

    action: str
    oid: str
    ok: bool
    info: str


@dataclass
class _Pending:
    line: bytes
    key: tuple[str, str]
    timeout: float
    deferred: defer.Deferred = field(default_factory=defer.Deferred)
    timer: Any = None
    sent: bool = False


def parse_reply(line: str) -> tuple[str, str, str, str] | None:
    """``ACTION RESULT ID INFO`` -> its four parts, or None when the line is not a reply."""
    parts = line.split(" ", 3)
    if len(parts) == 2 and parts[0].upper() == "INIT":
        parts.append("-")  # NOTE: oned accepts any INIT answer but FAILURE, even without an id
    if len(parts) < 3:
        return None
    action, result, oid = parts[0].upper(), parts[1].upper(), parts[2]
    info = parts[3] if len(parts) == 4 else ""
    return action, result, oid, "" if info == "-" else info


class DriverChannel(DriverProcess):
    """One driver process and the requests in flight on it."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        reactor: Any,
        log: logging.Logger,
        *,
        stderr_path: str | None = None,
        concurrency: int = 1000,
        cwd: str | None = None,
    ):
        super().__init__(name, argv, env, reactor, log, stderr_path=stderr_path, cwd=cwd)
        self._concurrency = concurrency
        self._in_flight: dict[tuple[str, str], _Pending] = {}
        self._waiting: deque[_Pending] = deque()
        self._backlog: dict[tuple[str, str], deque[_Pending]] = {}
        # PROGRESS lines: fn(id, bytes done, bytes in all or 0); None drops them.
        self.on_progress: Callable[[str, int, int], None] | None = None

    # -- lines from the driver ---------------------------------------------------------------

    def line_received(self, raw: bytes) -> None:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.garbage(raw)
            return
        if not line:
            return
        parsed = parse_reply(line)
        if parsed is None:
            self.garbage(raw)
        elif parsed[0] == "LOG":
            self._driver_log(parsed[1], parsed[2], parsed[3])
        elif parsed[0] == "PROGRESS":
            self._progress(line, raw)
        elif parsed[0] == "INIT":
            self._initialised(parsed[1] == "SUCCESS", parsed[3])
        elif parsed[1] in ("SUCCESS", "FAILURE"):
            self._replied(Reply(parsed[0], parsed[2], parsed[1] == "SUCCESS", parsed[3]))
        else:
            self.garbage(raw)

    def _driver_log(self, severity: str, oid: str, text: str) -> None:
        """NOTE: 1.4/2.0 drivers send ``LOG - id text``; 3.x+ put E/W/I/D in place of ``-``."""
        level = {"E": logging.ERROR, "W": logging.WARNING, "D": logging.DEBUG}.get(
            severity, logging.INFO
        )
        about = f" [{oid}]" if oid not in ("-", "") else ""
        self._log.log(level, f"{self.name}{about}: {text}")

    def _progress(self, line: str, raw: bytes) -> None:
        """``PROGRESS <id> <done> <total>``: onecloud's own line for the bytes of a long action
        (an image copy) so far; total 0 is unknown. Handed to ``on_progress`` if anyone listens."""
        words = line.split(" ")
        if len(words) != 4 or not all(_COUNT.fullmatch(w) for w in words[2:]):
            self.garbage(raw)
            return
        if self.on_progress is None:
            return
        try:
            self.on_progress(words[1], int(words[2]), int(words[3]))
        except Exception:  # a listener's bug must not break the channel
            self._log.exception(f"{self.name}: handling {line[:200]!r} failed")

    def _replied(self, reply: Reply) -> None:
        pending = self._in_flight.pop((reply.action, reply.oid), None)
        if pending is None:
            self._log.warning(
                f"{self.name}: dropped a reply nobody waits for: {reply.action} {reply.oid}"
            )
            return
        self._settle(pending)
        self._next_of(pending.key)
        pending.deferred.callback(reply)
        self._send_waiting()
        self._check_drained()

    def _next_of(self, key: tuple[str, str]) -> None:
        """Promote the next request queued behind a finished one with the same action and id."""
        backlog = self._backlog.get(key)
        if backlog:
            pending = backlog.popleft()
            self._in_flight[key] = pending
            self._waiting.append(pending)
        if backlog is not None and not backlog:
            del self._backlog[key]

    def _settle(self, pending: _Pending) -> None:
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if pending.sent:
            pending.sent = False
            self._sent -= 1

    # -- requests ------------------------------------------------------------------------------

    def request(self, action: str, oid: int | str, *args: object, timeout: float) -> defer.Deferred:
        """Send ``ACTION ID ARGS``, each argument one word of ``encode_words`` (so no value can
        add words or lines to the request); fires with a Reply, or fails with DriverTimeout (no
        answer within ``timeout`` seconds of being written to the driver) or DriverUnavailable
        (not written because the driver was not running, ``timeout`` seconds after the request).
        Time spent queued behind the concurrency bound while the driver runs is not counted: a
        queue is not a timeout. Replies are matched by (action, id), so a request waits behind
        an earlier one with the same action and id."""
        key = (action.upper(), str(oid))
        text = encode_words(key + tuple(args))
        if self._stopping:
            return defer.fail(
                DriverStopping(f"{self.name} is stopping: {key[0]} {key[1]} not sent")
            )
        if text.split(" ", 2)[:2] != list(key):
            return defer.fail(DriverUnavailable(f"{self.name}: {text[:80]}: refused"))
        pending = _Pending((text + "\n").encode(), key, timeout)
        self._arm(pending, self._still_queued)
        if key in self._in_flight:
            self._backlog.setdefault(key, deque()).append(pending)
            return pending.deferred
        self._in_flight[key] = pending
        self._waiting.append(pending)
        self._send_waiting()
        return pending.deferred

    def _send_waiting(self) -> None:
        while (
            self._waiting and self._ready and not self._stopping and self._sent < self._concurrency
        ):
            pending = self._waiting.popleft()
            if self._in_flight.get(pending.key) is pending and not pending.sent:
                pending.sent = True
                self._sent += 1
                self._arm(pending, self._timed_out)  # the timeout counts from the write
                self._transport.write(pending.line)

    def _arm(self, pending: _Pending, expired: Callable[[_Pending], None]) -> None:
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = self._reactor.callLater(pending.timeout, expired, pending)

    def _still_queued(self, pending: _Pending) -> None:
        """Not written ``timeout`` seconds after the request. While the driver runs the request
        keeps waiting (each one ahead of it is answered or times out); with the driver down
        (exited, restarting, INIT failed) it fails with DriverUnavailable."""
        if pending.sent:
            return
        if self._ready and not self._stopping:
            self._arm(pending, self._still_queued)
            return
        backlog = self._backlog.get(pending.key)
        if backlog and pending in backlog:
            backlog.remove(pending)
        elif self._in_flight.get(pending.key) is pending:
            del self._in_flight[pending.key]  # _send_waiting skips it in the queue
            self._next_of(pending.key)
        action, oid = pending.key
        pending.deferred.errback(
            DriverUnavailable(
                f"{action} {oid}: not sent, {self.name} not running for {pending.timeout:g} s"
            )
        )

    def _timed_out(self, pending: _Pending) -> None:
        if self._in_flight.get(pending.key) is not pending:
            return
        del self._in_flight[pending.key]
        self._next_of(pending.key)
        was_sent = pending.sent
        self._settle(pending)
        action, oid = pending.key
        if was_sent and self._transport is not None:
            self._transport.write(f"DRIVER_CANCEL {oid}\n".encode())
        pending.deferred.errback(
            DriverTimeout(f"{action} {oid}: no answer from {self.name} in {pending.timeout:g} s")
        )
        self._send_waiting()
        self._check_drained()

    def _reissue(self) -> None:
        """After a restart, send again what the dead process had in flight (in order)."""
        resend = [p for p in self._in_flight.values() if p.sent]
        for pending in resend:
            pending.sent = False
        self._sent = 0
        if resend:
            self._log.info(f"{self.name}: re-issuing {len(resend)} requests after a restart")
        self._waiting.extendleft(reversed(resend))
        self._send_waiting()

    def cancel(self, oid: int | str) -> None:
        """``DRIVER_CANCEL <id>``: drop every request for that id, in flight or queued."""
        oid = str(oid)
        dropped = [p for key, p in self._in_flight.items() if key[1] == oid]
        for key in [k for k in self._backlog if k[1] == oid]:
            dropped += self._backlog.pop(key)
        for pending in dropped:
            self._in_flight.pop(pending.key, None)
            self._settle(pending)
            pending.deferred.errback(DriverCancelled(f"{pending.key[0]} {oid} cancelled"))
        if self._transport is not None and self._ready:
            self._transport.write(f"DRIVER_CANCEL {oid}\n".encode())
        self._send_waiting()
        self._check_drained()

    def _fail_all(self, reason: Exception) -> None:
        pending_all = list(self._in_flight.values())
        pending_all += [p for backlog in self._backlog.values() for p in backlog]
        self._in_flight.clear()
        self._waiting.clear()
        self._backlog.clear()
        for pending in pending_all:
            self._settle(pending)
            pending.deferred.errback(reason)
