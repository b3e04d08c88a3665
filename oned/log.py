"""oned.log in OpenNebula's format: ``<ctime> [MODULE][E|W|I|D]: message``.

Modules are child loggers of ``one`` named after OpenNebula's components (ONE, ReM, InM, VMM,
LCM, DiM, TM, HKM, ImM for images). DEBUG_LEVEL 0..3 selects ERROR, WARNING, INFO or DEBUG.

Every message is one line whatever it quotes: control characters (a newline in a user name)
are written escaped (``\\n``, ``\\x1b``), and a message is cut after ``MAX_MESSAGE`` characters,
so a client cannot forge log lines or fill the disk. A traceback (``exc_info``) stays multi-line.

Log rotation: the file is reopened by name at ``reopen()`` (oned and mm_sched call it on SIGHUP),
so logrotate renames the file and signals, and no line is lost or split between the two files.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Any

from oned.filemodes import create_file

LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_LETTERS = {logging.ERROR: "E", logging.WARNING: "W", logging.INFO: "I", logging.DEBUG: "D"}
MAX_MESSAGE = 4096  # characters of one message kept in the log
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut after ``limit`` characters, with its control characters escaped."""
    cut = len(message) - limit
    if cut > 0:
        message = message[:limit]
    if _CONTROL.search(message):
        message = _CONTROL.sub(_escape, message)
    return f"{message}... [{cut} characters cut]" if cut > 0 else message


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return _NAMED.get(match.group()) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


class OneFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(record.created))
        module = record.name.rsplit(".", 1)[-1]
        letter = _LETTERS.get(record.levelno, "E" if record.levelno > logging.ERROR else "D")
        text = f"{stamp} [{module}][{letter}]: {one_line(record.getMessage())}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def exc_info(failure: Any) -> tuple[Any, Any, Any]:
    """A Twisted Failure as ``exc_info=`` wants it, so its traceback is logged as ours (on
    several lines) instead of inside the escaped one-line message."""
    return (failure.type, failure.value, failure.getTracebackObject())


def module(name: str) -> logging.Logger:
    """The logger of one of oned's modules, e.g. ``module("ReM")``."""
    return logging.getLogger("one").getChild(name)


class ReopeningFileHandler(logging.FileHandler):
    """A FileHandler whose ``reopen()`` switches to a new file at the same path."""

    def reopen(self) -> None:
        """Close the file (renamed by logrotate, say) and open ``baseFilename`` again, created
        as ``setup`` creates it. Under the handler's lock: a record is written whole to one
        file or the other."""
        create_file(self.baseFilename)
        with self.lock or contextlib.nullcontext():
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
            self.stream = self._open()


def reopen() -> None:
    """Reopen every log file of the ``one`` loggers; never call it from a signal handler
    directly (the interrupted thread may hold the handler's lock in the middle of a record)."""
    for handler in logging.getLogger("one").handlers:
        if isinstance(handler, ReopeningFileHandler):
            try:
                handler.reopen()
            except OSError as exc:  # the old file stays open: nothing is lost
                module("ONE").error(f"cannot reopen {handler.baseFilename}: {exc.strerror}")


def setup(path: str, debug_level: int) -> logging.Handler:
    """Send every ``one`` logger to ``path`` at the level DEBUG_LEVEL names.

    The file is created with ``filemodes.FILE_MODE`` less the umask (0600 under UMASK 077)."""
    create_file(path)
    handler = ReopeningFileHandler(path, encoding="utf-8")
    handler.setFormatter(OneFormatter())
    root = logging.getLogger("one")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[debug_level])
    root.propagate = False
    return handler


def capture_twisted() -> None:
    """Send Twisted's own warnings and errors to oned.log, under the ReM module."""
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        STDLibLogObserver,
        globalLogBeginner,
    )

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    # zope.interface declarations mypy cannot see without a plugin
    observer = FilteringLogObserver(STDLibLogObserver(name="one.ReM"), [predicate])  # type: ignore[arg-type,list-item]
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)  # type: ignore[list-item]
