"""The driver line protocol (OpenNebula 2.0's MAD wire, reference §1.1-1.2): codec and serve loop.

oned -> driver: ``ACTION ID ARG...``; driver -> oned: ``ACTION SUCCESS|FAILURE ID INFO`` and
``LOG - ID text``. Every line ends in ``\\n`` and nothing else in it is a line break. The codec
(``encode_words``/``decode_words``, ``parse_request``, ``parse_reply``, ``format_*``) is pure and
shared with oned, so the grammar has one implementation. ``serve`` is the loop every driver's
``main()`` calls.

Every value that crosses into a driver as a word (request arguments, transfer script lines, hook
arguments) goes through ``encode_word``: plain values (paths, ``host:path``, numbers, names) stay
as they are, so lines look like OpenNebula's; anything else is percent-encoded (UTF-8), so an
encoded word never holds a space, a control character or a line break and cannot be re-split.
``decode_word`` is its strict twin.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, BinaryIO, Generic, NamedTuple, TypeVar
from urllib.parse import unquote_to_bytes

from drivers import driver_conf
from drivers.lanes import Lane, Lanes

NO_ID = "-"
_ACTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDS_QUOTES = re.compile(r'[\s=#,\[\]"\\]')
NO_ID_ACTIONS = frozenset({"INIT", "FINALIZE"})
SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@+,=~-")
EMPTY_WORD = "''"  # the empty string, which would otherwise vanish between two spaces
_WORD = re.compile(r"(?:[A-Za-z0-9_./:@+,=~-]|%[0-9A-F]{2})+")


class ProtocolError(ValueError):
    """A line that does not follow the grammar; the message says what is wrong with it."""


class BadArgument(ProtocolError):
    """A request line whose action and id are fine but an argument is not a word we encode."""

    def __init__(self, action: str, ident: str, message: str) -> None:
        super().__init__(message)
        self.action, self.id = action, ident


class DriverFailure(Exception):
    """Raised by an action to answer FAILURE; its message becomes the reply's INFO."""


class NoReply(Exception):
    """Raised by an action that answers nothing at all (a simulated hang)."""


class Request(NamedTuple):
    """One oned -> driver line: ``ACTION ID ARG...`` (ID is ``-`` for INIT and FINALIZE)."""

    action: str
    id: str
    args: tuple[str, ...] = ()


class Reply(NamedTuple):
    """One driver -> oned line. ``result`` is SUCCESS, FAILURE, or ``-`` for LOG lines."""

    action: str
    result: str
    id: str
    info: str

    @property
    def ok(self) -> bool:
        return self.result == "SUCCESS"


def one_line(text: str) -> str:
    """``text`` with every line break (and NUL) turned into a space, stripped."""
    return " ".join(text.replace("\0", " ").splitlines()).strip()


def encode_word(word: str) -> str:
    """``word`` as one token of a line: itself when every character is in SAFE_CHARS, else
    each UTF-8 byte outside them as ``%XX``; the empty string is EMPTY_WORD."""
    if not word:
        return EMPTY_WORD
    if SAFE_CHARS.issuperset(word):
        return word
    data = word.encode("utf-8", "surrogatepass")
    return "".join(chr(b) if chr(b) in SAFE_CHARS else f"%{b:02X}" for b in data)


def decode_word(token: str) -> str:
    """The word ``encode_word`` made ``token`` from; ProtocolError naming a token that it could
    not have made (a character outside the set, a bad or needless escape, lower-case hex, bytes
    that are not UTF-8)."""
    if token == EMPTY_WORD:
        return ""
    if not _WORD.fullmatch(token):
        raise ProtocolError(f"malformed word {token[:80]!r}")
    if "%" not in token:
        return token
    try:
        word = unquote_to_bytes(token).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ProtocolError(f"malformed word {token[:80]!r}: not UTF-8") from None
    if encode_word(word) != token:
        raise ProtocolError(f"malformed word {token[:80]!r}: not the canonical encoding")
    return word


def encode_words(words: Iterable[object]) -> str:
    """One line (without its line break) of ``encode_word(str(w))`` joined by single spaces."""
    return " ".join(encode_word(str(word)) for word in words)


def decode_words(line: str) -> list[str]:
    """The words of a line ``encode_words`` made (any run of blanks separates them)."""
    return [decode_word(token) for token in line.split()]


def parse_request(line: str) -> Request:
    """Split a request line; the action is upper-cased as OpenNebula's Ruby drivers do, and
    every argument is decoded with ``decode_word``.

    Raises ProtocolError for a blank line, an action that is not a word, a missing ID, or
    BadArgument (a ProtocolError carrying the action and id) for a malformed argument.
    """
    tokens = line.split()
    if not tokens:
        raise ProtocolError("empty line")
    action = tokens[0].upper()
    if not _ACTION.fullmatch(action):
        raise ProtocolError(f"bad action {tokens[0][:40]!r}")
    if len(tokens) < 2 and action not in NO_ID_ACTIONS:
        raise ProtocolError(f"{action} without an id")
    ident = tokens[1] if len(tokens) > 1 else NO_ID
    try:
        args = tuple(decode_word(token) for token in tokens[2:])
    except ProtocolError as err:
        raise BadArgument(action, ident, str(err)) from None
    return Request(action, ident, args)


def parse_reply(line: str) -> Reply:
    """Split a driver's line into action, result, id and INFO (the rest, ``-`` kept verbatim).

    Raises ProtocolError when there are fewer than three fields or the result is unknown.
    """
    parts = line.strip().split(None, 3)
    if len(parts) < 3:
        raise ProtocolError(f"short reply {line.strip()[:80]!r}")
    action, result, ident = parts[0].upper(), parts[1].upper(), parts[2]
    if result not in ("SUCCESS", "FAILURE") and not (action == "LOG" and len(result) == 1):
        raise ProtocolError(f"bad result {parts[1][:40]!r} in {action} reply")
    return Reply(action, result, ident, parts[3] if len(parts) > 3 else "")


def format_reply(action: str, ok: bool, ident: str | int, info: str = "") -> str:
    """``ACTION SUCCESS|FAILURE ID INFO\\n``: always exactly one line, INFO ``-`` when empty."""
    result = "SUCCESS" if ok else "FAILURE"
    return f"{action} {result} {ident} {one_line(info) or '-'}\n"


def format_log(ident: str | int, text: str, severity: str = "-") -> str:
    """``LOG - ID text\\n`` (ID ``-`` when the line is about no object); always one line.
    ``severity`` is 1.4's ``-`` or 3.x's E, W, I or D (oned logs the line at that level)."""
    return f"LOG {severity} {ident} {one_line(text) or '-'}\n"


def format_attribute(name: str, value: object) -> str:
    """``NAME=value`` in template syntax, double-quoted (``\\`` and ``"`` escaped) when needed."""
    text = one_line(str(value))
    if text and not _NEEDS_QUOTES.search(text):
        return f"{name}={text}"
    return '{}="{}"'.format(name, text.replace("\\", "\\\\").replace('"', '\\"'))


def format_attributes(pairs: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """Space-separated template attributes, the INFO of ``MONITOR SUCCESS`` (2.0 style)."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return " ".join(format_attribute(k, v) for k, v in items)


# ---------------------------------------------------------------------------------------------
# The serve loop


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


R = TypeVar("R")


class ScriptFile(Generic[R]):
    """A YAML file of scripted outcomes (the dummy drivers' ``--script``), re-read when its
    mtime, size or inode change, so a fault-injection test can change outcomes at run time.
    ``parse`` turns the YAML document into rules (ValueError when wrong); ``empty`` is what no
    file means. A file that does not parse is reported and the previous rules are kept."""

    def __init__(self, path: str, parse: Callable[[Any], R], empty: R) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._parse = parse
        self._empty = empty
        self._stamp: tuple[int, int, int] | None = None
        self._rules = empty

    def rules(self, log: Callable[[str], None]) -> R:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            with self.lock:
                if stamp != self._stamp:
                    self._reload(log)
                    self._stamp = stamp  # after: no thread reads the rules before they load
        return self._rules

    def _reload(self, log: Callable[[str], None]) -> None:
        import yaml  # here: a driver must start in milliseconds without a script

        try:
            with open(self.path) as script:
                self._rules = self._parse(yaml.safe_load(script))
        except FileNotFoundError:
            self._rules = self._empty
        except (OSError, ValueError, yaml.YAMLError) as err:
            log(f"ignoring the changes to {self.path}: {' '.join(str(err).split())}")
