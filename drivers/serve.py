"""The serve loop every driver's ``main()`` calls, its command line and what an action gets.

``serve`` reads oned's requests on stdin, answers INIT, FINALIZE and DRIVER_CANCEL itself and runs
every other action on the threads of its host's lane (``drivers/lanes.py``); an action is
``fn(request, log) -> info`` (``Action``) whose ``log`` is a ``Logger``: ``LOG`` lines and
cancellation hooks. Replies and logs go out as whole lines through ``Output``. The words and
lines themselves are ``drivers/protocol.py``'s codec.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import BinaryIO

from drivers import driver_conf
from drivers.lanes import Lane, Lanes
from drivers.protocol import (
    NO_ID,
    BadArgument,
    DriverFailure,
    NoReply,
    ProtocolError,
    Request,
    format_log,
    format_reply,
    parse_request,
)


class Output:
    """Writes whole lines to oned: one write call per line, under a lock, then flush."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def write(self, line: str) -> None:
        """Send ``line`` (which must end in ``\\n``); a closed pipe marks the output broken."""
        data = line.encode("utf-8", "replace")
        with self._lock:
            try:
                while data:
                    written = self._stream.write(data)
                    data = data[written:] if written else b""
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True


class Logger:
    """What an action gets besides its request: ``log(text)`` and cancellation.

    Calling it writes one ``LOG - ID line`` per non-empty line of text. ``on_cancel(fn)``
    registers what DRIVER_CANCEL should do (kill a process, close a channel); after a cancel
    the action's reply is dropped.
    """

    def __init__(self, output: Output, ident: str) -> None:
        self._output = output
        self.id = ident
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []
        self.cancelled = False

    def __call__(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self._output.write(format_log(self.id, line))

    def warning(self, text: str) -> None:
        """``LOG W ID line`` per non-empty line: oned writes it to oned.log as a warning."""
        for line in text.splitlines():
            if line.strip():
                self._output.write(format_log(self.id, line, "W"))

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on DRIVER_CANCEL for this action (at once if already cancelled)."""
        with self._lock:
            if not self.cancelled:
                self._hooks.append(hook)
                return
        hook()

    def cancel(self) -> None:
        """Mark cancelled and run the registered hooks (each at most once)."""
        with self._lock:
            self.cancelled, hooks, self._hooks = True, self._hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception as err:  # a failing hook must not kill the reader
                self(f"cancel hook failed: {err}")


Action = Callable[[Request, Logger], str]


class _InFlight:
    """The actions queued or running, by id, so DRIVER_CANCEL can find them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, list[Logger]] = {}

    def add(self, log: Logger) -> None:
        with self._lock:
            self._by_id.setdefault(log.id, []).append(log)

    def remove(self, log: Logger) -> None:
        with self._lock:
            logs = self._by_id.get(log.id, [])
            if log in logs:
                logs.remove(log)
            if not logs:
                self._by_id.pop(log.id, None)

    def cancel(self, ident: str) -> int:
        """Cancel every action for ``ident``; returns how many there were."""
        with self._lock:
            logs = list(self._by_id.get(ident, []))
        for log in logs:
            log.cancel()
        return len(logs)


def run_action(action: Action, request: Request, log: Logger) -> str | None:
    """The reply line for one action, or None when it was cancelled or raised NoReply.

    A DriverFailure answers FAILURE with its message; any other exception answers FAILURE
    with its one-line text, and its traceback goes to stderr (the driver's log file).
    """
    if log.cancelled:
        return None
    try:
        ok, info = True, action(request, log)
    except NoReply:
        return None
    except DriverFailure as err:
        ok, info = False, str(err)
    except Exception as err:
        import traceback  # here: the module is slow to import and rarely needed

        traceback.print_exc(file=sys.stderr)
        ok, info = False, f"{type(err).__name__}: {err}"
    return None if log.cancelled else format_reply(request.action, ok, request.id, info)


def host_lane(request: Request) -> str | None:
    """The lane of a VMM or IM request: its first argument, the host (``DEPLOY id host ...``,
    ``MONITOR id host ...``, ``MIGRATE id source ...``)."""
    return request.args[0] if request.args else None


def unbuffered_stdout() -> BinaryIO:
    """The process's stdout without a buffer, so one line is one write(2)."""
    return open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)


def driver_parser(prog: str, doc: str, *, concurrency: int = 15) -> argparse.ArgumentParser:
    """The argument parser of a driver, with ``--concurrency`` (actions run at once)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.strip().splitlines()[0])
    parser.add_argument(
        "--concurrency", type=int, default=concurrency, help=f"actions at once ({concurrency})"
    )
    return parser


def parse_driver_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, conf_files: bool = True
) -> argparse.Namespace:
    """NOTE: oned passes ARGUMENTS as ONE argv element (reference §1.1), as OpenNebula does;
    every element is re-split like a shell would, so both forms work. A ``.conf`` word names
    the driver's configuration file under etc/, whose ``NAME = value`` lines are defaults of its
    options (drivers/driver_conf.py); ``conf_files`` False for drivers that read their file
    themselves (EC2)."""
    argv = sys.argv[1:] if argv is None else argv
    words = [word for arg in argv for word in shlex.split(arg)]
    if conf_files:
        try:
            found = driver_conf.defaults(parser, words, driver_conf.etc_dir(os.environ))
        except (ValueError, OSError, UnicodeDecodeError) as err:
            parser.error(str(err))
        words = found + driver_conf.without_files(parser, words)
    return parser.parse_args(words)


def serve(
    actions: Mapping[str, Action],
    *,
    concurrency: int = 15,
    lane: Lane | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> int:
    """Answer oned until FINALIZE or end of input; returns the exit status (0).

    INIT, FINALIZE and DRIVER_CANCEL are handled here; every other request runs ``actions[ACTION]``
    on one of ``concurrency`` threads of its host's lane (``lane(request)``; one shared lane
    without it), so a hung host delays only its own actions. Unknown actions answer
    ``ACTION FAILURE ID unknown action``; malformed lines are logged and ignored.
    """
    stdin = sys.stdin.buffer if stdin is None else stdin
    output = Output(unbuffered_stdout() if stdout is None else stdout)
    dispatcher = _Dispatcher(actions, output, Lanes(concurrency, lane))
    for raw in stdin:
        request = _read(raw, output)
        if request is None:
            continue
        if request.action == "FINALIZE" or output.broken:
            break
        dispatcher.dispatch(request)
    dispatcher.workers.stop()
    return 0


def _read(raw: bytes, output: Output) -> Request | None:
    """Parse one input line; blank and malformed lines give None (the latter logged, or answered
    FAILURE when only an argument is malformed)."""
    line = raw.decode("utf-8", "replace").strip()
    if not line:
        return None
    try:
        return parse_request(line)
    except BadArgument as err:  # oned waits for this one: answer it rather than time out
        output.write(format_reply(err.action, False, err.id, f"bad request: {err}"))
    except ProtocolError as err:
        output.write(format_log(NO_ID, f"malformed request ignored ({err}): {line[:200]}"))
    return None


class _Dispatcher:
    """Routes parsed requests: the protocol's own actions here, the driver's to the workers."""

    def __init__(self, actions: Mapping[str, Action], output: Output, workers: Lanes) -> None:
        self.actions, self.output = actions, output
        self.inflight, self.workers = _InFlight(), workers

    def dispatch(self, request: Request) -> None:
        if request.action == "INIT":
            self.output.write("INIT SUCCESS - -\n")
        elif request.action == "DRIVER_CANCEL":
            found = self.inflight.cancel(request.id)
            what = "cancelled" if found else "not cancelled: nothing in flight"
            self.output.write(format_log(request.id, f"Driver command for {request.id} {what}"))
        elif request.action not in self.actions:
            self.output.write(format_reply(request.action, False, request.id, "unknown action"))
        else:
            log = Logger(self.output, request.id)
            self.inflight.add(log)
            job = partial(self._job, self.actions[request.action], request, log)
            self.workers.submit(request, job)

    def _job(self, action: Action, request: Request, log: Logger) -> None:
        try:
            reply = run_action(action, request, log)
        finally:
            self.inflight.remove(log)
        if reply is not None:
            self.output.write(reply)
