"""mm_sched: the onecloud scheduler process (reference §7).

Reads sched.conf and the flags, logs to ``<log dir>/sched.log`` in oned's format, writes its pid
to ``<run dir>/sched.pid`` and runs the round loop until SIGTERM or SIGINT, then finishes the
round in progress and exits 0. It talks to oned over XML-RPC only, as ``$ONE_AUTH``'s user.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from oned import log as onelog
from oned.client import OneClient, OneClientError, read_session
from oned.errors import ConfigError
from oned.locations import Locations, locations
from scheduler.config import HELP, Settings, configure, describe, parser
from scheduler.dispatch import Dispatcher
from scheduler.loop import Scheduler


def main(argv: list[str] | None = None) -> int:
    """Run mm_sched; 1 (with one line on stderr) when it cannot start, 0 after a clean stop."""
    flags = parser()
    args = flags.parse_args(argv)
    if args.max_host == HELP:
        flags.print_help()
        return 0
    locs = locations()
    try:
        settings, session, path = _prepare(args, locs)
    except (ConfigError, OneClientError, OSError) as exc:
        print(f"mm_sched: {exc}", file=sys.stderr)
        return 1
    client = OneClient(settings.endpoint, session)
    _log_header(settings, path, client.endpoint)
    stop = threading.Event()
    _stop_on_signals(stop)
    connect = lambda: OneClient(settings.endpoint, session)  # noqa: E731
    dispatcher = Dispatcher(connect, settings.dispatch_threads)
    with _pid_file(locs.sched_pid):
        try:
            Scheduler(settings, client, dispatcher).run(stop)
        finally:
            dispatcher.close()
            client.close()
    onelog.module("SCHED").info("Scheduler stopped")
    return 0


def _prepare(args: argparse.Namespace, locs: Locations) -> tuple[Settings, str, str | None]:
    """Settings, session and the sched.conf read (None: none); sched.log opened."""
    path, text = _read_config(args.config, locs)
    settings = configure(args, text, path)
    session = read_session()
    OneClient(settings.endpoint, session)  # a bad $ONE_XMLRPC is reported here
    # `one start` passes oned.conf's UMASK (077 or 027); never let other users read sched.log.
    os.umask(os.umask(0o077) | 0o007)
    for folder in {locs.log, locs.run}:
        os.makedirs(folder, exist_ok=True)
    onelog.setup(locs.sched_log, settings.debug_level)
    return settings, session, path if text is not None else None


def _read_config(given: str | None, locs: Locations) -> tuple[str, str | None]:
    """The path and text of sched.conf; no text when the default file does not exist."""
    path = given or os.path.join(locs.etc, "sched.conf")
    try:
        with open(path, encoding="utf-8") as f:
            return path, f.read()
    except FileNotFoundError:
        if given:
            raise ConfigError(f"cannot read {path}: no such file") from None
        return path, None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _log_header(settings: Settings, path: str | None, endpoint: str) -> None:
    log = onelog.module("SCHED")
    log.info("Init Scheduler Log system")
    log.info(f"Log Level: {settings.debug_level} [0=ERROR,1=WARNING,2=INFO,3=DEBUG]")
    log.info(f"Configuration: {path or 'built-in defaults (no sched.conf)'}")
    log.info(f"    ONE_XMLRPC = {endpoint}")
    for line in describe(settings):
        log.info(f"    {line}")
    for warning in settings.warnings:
        log.warning(warning)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        onelog.module("SCHED").info(f"Got signal {signal.Signals(signum).name}, stopping")
        stop.set()

    def reopen(signum: int, frame: FrameType | None) -> None:
        # SIGHUP (logrotate renamed sched.log): reopened by a thread, which waits for the
        # handler's lock if this one was interrupted in the middle of a record.
        threading.Thread(target=_reopen_log, name="reopen-log", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, reopen)


def _reopen_log() -> None:
    onelog.reopen()
    onelog.module("SCHED").info("sched.log reopened (SIGHUP)")


@contextlib.contextmanager
def _pid_file(path: str) -> Iterator[None]:
    """Write our pid to ``path``; remove it at exit if it still names us."""
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path, encoding="ascii") as f:
                mine = f.read().strip() == str(os.getpid())
            if mine:
                os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
