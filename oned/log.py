"""oned.log in OpenNebula's format: ``<ctime> [MODULE][E|W|I|D]: message``.

Modules are child loggers of ``one`` named after OpenNebula's components (ONE, ReM, InM, VMM,
LCM, DiM, TM, HKM, ImM for images). DEBUG_LEVEL 0..3 selects ERROR, WARNING, INFO or DEBUG.

Every message is one line whatever it quotes: control characters (a newline in a user name)
are written escaped (``\\n``, ``\\x1b``), and a message is cut after ``MAX_MESSAGE`` characters,
so a client cannot forge log lines or fill the disk. A traceback (``exc_info``) stays multi-line.
"""

from __future__ import annotations

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


def setup(path: str, debug_level: int) -> logging.Handler:
    """Send every ``one`` logger to ``path`` at the level DEBUG_LEVEL names.

    The file is created with ``filemodes.FILE_MODE`` less the umask (0600 under UMASK 077)."""
    create_file(path)
    handler = logging.FileHandler(path, encoding="utf-8")
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
    observer = FilteringLogObserver(STDLibLogObserver(name="one.ReM"), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
