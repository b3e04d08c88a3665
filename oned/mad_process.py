"""mad_process: the life of a driver process (a MAD): spawn, INIT, restart, stop.

``DriverProcess`` spawns one driver executable with an explicit environment, sends ``INIT`` and
waits for ``INIT SUCCESS`` (``INIT_TIMEOUT``), restarts a driver that dies with back-off, and
stops it: the requests it runs get ``STOP_GRACE`` seconds to finish, then ``FINALIZE`` and,
``KILL_GRACE`` seconds later, SIGKILL. What the requests are is ``oned.mad.DriverChannel``'s
business (the subclass): it counts the requests written and not answered in ``_sent``, fails
them all in ``_fail_all``, re-issues them in ``_reissue`` and reads the driver's lines in
``line_received``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from typing import Any

from twisted.internet import defer, error, protocol

INIT_TIMEOUT = 5.0
STOP_GRACE = 10.0  # seconds in-flight requests get to finish when oned stops
KILL_GRACE = 2.0  # seconds between FINALIZE and SIGKILL
MAX_LINE = 1 << 20
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


class DriverTimeout(Exception):
    """A request got no reply within its timeout; DRIVER_CANCEL was sent."""


class DriverUnavailable(Exception):
    """The driver is not running (missing executable, failed INIT, being restarted)."""


class DriverCancelled(Exception):
    """oned itself cancelled the request (DRIVER_CANCEL); nobody waits for its outcome."""


class DriverStopping(DriverCancelled):
    """oned is stopping: the request was not sent, or not answered within the stop's grace
    period. Its VM keeps its transient state for reconciliation at the next start: stopping
    is never the action's failure."""


def find_executable(executable: str, mads_dir: str) -> str | None:
    """OpenNebula's lookup: absolute, or under lib/mads; then (for development) the PATH."""
    if os.path.isabs(executable):
        return executable if os.path.exists(executable) else None
    candidate = os.path.join(mads_dir, executable)
    if os.path.exists(candidate):
        return candidate
    return shutil.which(executable)


class _Process(protocol.ProcessProtocol):
    def __init__(self, channel: DriverProcess):
        self._channel = channel
        self._buffer = b""

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._channel.line_received(line.rstrip(b"\r"))
        if len(self._buffer) > MAX_LINE:
            self._channel.garbage(self._buffer[:200])
            self._buffer = b""

    def processEnded(self, reason: Any) -> None:
        self._channel.process_ended(self, reason)


class DriverProcess:
    """One driver process: started, restarted when it dies, stopped with a grace period."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        reactor: Any,
        log: logging.Logger,
        *,
        stderr_path: str | None = None,
        cwd: str | None = None,
    ):
        self.name = name
        self._argv = argv
        self._env = env
        self._reactor = reactor
        self._log = log
        self._stderr_path = stderr_path
        self._cwd = cwd
        self._process: _Process | None = None
        self._transport: Any = None
        self._ready = False
        self._stopping = False
        self._on_exit: defer.Deferred = defer.Deferred()
        self._drained: defer.Deferred | None = None
        self._init: defer.Deferred | None = None
        self._init_timer: Any = None
        self._restarts = 0
        self._sent = 0  # requests written to the driver and not answered (the subclass counts)
        self.started_at = 0.0

    @property
    def ready(self) -> bool:
        return self._ready

    # -- what the subclass does with the requests --------------------------------------------

    def line_received(self, raw: bytes) -> None:
        raise NotImplementedError

    def garbage(self, raw: bytes) -> None:
        self._log.warning(f"{self.name}: ignored a malformed line from the driver: {raw[:200]!r}")

    def _fail_all(self, reason: Exception) -> None:
        raise NotImplementedError

    def _reissue(self) -> None:
        raise NotImplementedError

    # -- start and restart -------------------------------------------------------------------

    def start(self) -> defer.Deferred:
        """Spawn the driver and send INIT; fires True once it answered INIT SUCCESS."""
        self._init = defer.Deferred()
        self._process = _Process(self)
        stderr = os.open(
            self._stderr_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640
        )
        try:
            self._transport = self._reactor.spawnProcess(
                self._process, self._argv[0], self._argv, env=self._env, path=self._cwd,
                childFDs={0: "w", 1: "r", 2: stderr},
            )  # fmt: skip
        finally:
            os.close(stderr)
        self.started_at = self._reactor.seconds()
        self._transport.write(b"INIT\n")
        self._init_timer = self._reactor.callLater(INIT_TIMEOUT, self._init_timed_out)
        return self._init

    def _init_timed_out(self) -> None:
        self._log.error(f"{self.name}: driver did not answer INIT within {INIT_TIMEOUT:g} s")
        self._kill()

    def _initialised(self, ok: bool, info: str) -> None:
        if self._init_timer is not None and self._init_timer.active():
            self._init_timer.cancel()
        if not ok:
            self._log.error(f"{self.name}: driver initialization failed: {info}")
            self._kill()
            return
        self._ready = True
        self._log.info(f"Driver {self.name} loaded.")  # NOTE: 1.4's words (the seed's log)
        if self._init is not None and not self._init.called:
            self._init.callback(True)
        self._reissue()

    def process_ended(self, process: _Process, reason: Any) -> None:
        if process is not self._process:
            return
        self._ready = False
        self._process = self._transport = None
        if self._init_timer is not None and self._init_timer.active():
            self._init_timer.cancel()
        if self._stopping:  # gone during the grace period: what it ran is left to reconcile
            self._fail_all(DriverStopping(f"driver {self.name} exited while stopping"))
            self._exited()
            return
        code = getattr(reason.value, "exitCode", None)
        self._log.error(f"{self.name}: driver exited (code {code}); restarting")
        if self._init is not None and not self._init.called:
            self._init.errback(DriverUnavailable(f"driver {self.name} exited during INIT"))
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        uptime = self._reactor.seconds() - self.started_at
        if uptime > 60:
            self._restarts = 0
        delay = BACKOFF[min(self._restarts, len(BACKOFF) - 1)]
        self._restarts += 1
        self._reactor.callLater(delay, self._restart)

    def _restart(self) -> None:
        if self._stopping:
            return
        self.start().addErrback(lambda f: self._log.error(f"{self.name}: {f.getErrorMessage()}"))

    # -- stop ----------------------------------------------------------------------------------

    def stop(self, grace: float = STOP_GRACE, kill_after: float = KILL_GRACE) -> defer.Deferred:
        """Refuse new requests and send nothing more, let the requests the driver is running
        finish within ``grace`` seconds, then FINALIZE and kill the process if it is still there
        ``kill_after`` seconds later. What is left fails with DriverStopping (never a FAILURE).
        Fires once the process is gone."""
        if self._stopping:
            return self._on_exit
        self._stopping = True
        if self._sent and self._transport is not None:
            self._log.info(f"{self.name}: waiting up to {grace:g} s for {self._sent} requests")
            self._drained = defer.Deferred()
            timer = self._reactor.callLater(grace, self._finalize, kill_after)
            self._drained.addCallback(lambda _: timer.cancel() if timer.active() else None)
            self._drained.addCallback(lambda _: self._finalize(kill_after))
        else:
            self._finalize(kill_after)
        return self._on_exit

    def _check_drained(self) -> None:
        """Called whenever a request the driver ran is settled: the last one ends the grace."""
        drained = self._drained
        if self._stopping and not self._sent and drained is not None and not drained.called:
            drained.callback(None)

    def _finalize(self, kill_after: float) -> None:
        left = self._sent
        self._fail_all(DriverStopping(f"driver {self.name} is stopping"))
        if left:
            self._log.warning(
                f"{self.name}: {left} requests unanswered at stop; reconciled at the next start"
            )
        if self._transport is None or self._process is None:
            self._exited()
            return
        try:
            self._transport.write(b"FINALIZE\n")
            self._transport.closeStdin()
        except Exception:  # the pipe may already be gone
            pass
        killer = self._reactor.callLater(kill_after, self._kill)
        self._on_exit.addBoth(lambda r: killer.cancel() if killer.active() else None)

    def _exited(self) -> None:
        if not self._on_exit.called:
            self._on_exit.callback(None)

    def _kill(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                self._transport.signalProcess("KILL")
