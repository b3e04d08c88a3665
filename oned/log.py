"""oned.log in OpenNebula's format: ``<ctime> [MODULE][E|W|I|D]: message``.

Modules are child loggers of ``one`` named after OpenNebula's components (ONE, ReM, InM, VMM,
LCM, DiM, TM, HKM). DEBUG_LEVEL 0..3 selects ERROR, WARNING, INFO or DEBUG.
"""

from __future__ import annotations

import logging
import time

LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_LETTERS = {logging.ERROR: "E", logging.WARNING: "W", logging.INFO: "I", logging.DEBUG: "D"}


class OneFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(record.created))
        module = record.name.rsplit(".", 1)[-1]
        letter = _LETTERS.get(record.levelno, "E" if record.levelno > logging.ERROR else "D")
        text = f"{stamp} [{module}][{letter}]: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def module(name: str) -> logging.Logger:
    """The logger of one of oned's modules, e.g. ``module("ReM")``."""
    return logging.getLogger("one").getChild(name)


def setup(path: str, debug_level: int) -> logging.Handler:
    """Send every ``one`` logger to ``path`` at the level DEBUG_LEVEL names."""
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
