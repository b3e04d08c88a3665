"""one: start, stop and show the onecloud services of this install: oned, the scheduler and,
once etc/econe/econe.conf exists, econe-server.

The command line and its start, stop and status commands; the processes themselves (launching,
waiting until ready, pid files, stopping) are cli/services.py.

NOTE: follows OpenNebula's share/scripts/one (reference §12.4): `one [-b] start|stop`, the lock
under the install's var/ (or /var/lock/one), "ONE is still running (PID:N). Please try 'one stop'
first.", the ONE_AUTH check before the first start, and "oned and scheduler started".
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import stat
import sys
import time
from collections.abc import Iterator, Sequence

from cli.services import (
    DEFAULT_PORT,
    DEFAULT_UMASK,
    OneError,
    Service,
    Settings,
    connect_address,
    port_answers,
    running_pid,
    services,
    start_service,
    stop_pid,
)
from oned.locations import Locations, default_auth_file, locations

# --- messages --------------------------------------------------------------------------------


def joined(labels: Sequence[str]) -> str:
    """``["oned", "scheduler"]`` -> ``"oned and scheduler"`` (the 1.4 script's wording)."""
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def still_running_message(pid: int) -> str:
    return f"ONE is still running (PID:{pid}). Please try 'one stop' first."


def root_message() -> str:
    return (
        "oned must not run as root in a system-wide install: its drivers run what users' "
        "templates ask for. Start it as the oneadmin user: sudo -u oneadmin one start"
    )


def readable_auth_message(path: str, mode: int) -> str:
    return (
        f"warning: the ONE_AUTH file {path} (oneadmin's password) has mode {mode:04o}: "
        f"other users may read it (chmod 600 {path})"
    )


def missing_auth_message(path: str) -> str:
    return (
        f"ONE_AUTH file {path} not found: it is needed on the first start to create the "
        "oneadmin account (write 'oneadmin:<password>' in it, or set ONE_AUTH)"
    )


# --- oned.conf -------------------------------------------------------------------------------


def settings_from_text(text: str) -> Settings:
    """The PORT, LISTEN_ADDRESS, DB BACKEND and UMASK of an oned.conf, read leniently.

    oned itself validates the file and reports errors; this only needs the values `one` uses.
    """
    text = re.sub(r"#[^\n]*", "", text)

    def value(pattern: str) -> str | None:
        match = re.search(pattern + r'\s*=\s*"?([^"\s,\]]+)', text, re.IGNORECASE | re.MULTILINE)
        return match.group(1) if match else None

    port = value(r"^\s*PORT")
    umask = value(r"^\s*UMASK") or ""
    return Settings(
        port=int(port) if port and port.isdigit() else DEFAULT_PORT,
        listen_address=value(r"^\s*LISTEN_ADDRESS") or "0.0.0.0",
        db_backend=(value(r"\bBACKEND") or "sqlite").lower(),
        umask=int(umask, 8) | 0o007 if re.fullmatch("[0-7]{1,4}", umask) else DEFAULT_UMASK,
    )


def _settings_from_config_module(path: str, text: str) -> Settings | None:
    """The settings through oned.config when it is there and accepts the file, else None."""
    try:
        from oned.config import load_config

        config = load_config(text, path)
    except Exception:  # missing module or a bad file: oned reports the latter itself
        return None
    port = getattr(config, "port", None)
    if not isinstance(port, int):
        return None
    return Settings(
        port=port,
        listen_address=str(getattr(config, "listen_address", "0.0.0.0")),
        db_backend=_backend(getattr(config, "db", None)),
        umask=int(getattr(config, "umask", DEFAULT_UMASK)),
    )


def _backend(db: object) -> str:
    """The DB backend name out of oned.config's DB setting, whatever its shape."""
    if isinstance(db, dict):
        value = db.get("backend") or db.get("BACKEND")
    else:
        value = getattr(db, "backend", None)
    return str(value or "sqlite").lower()


def read_settings(path: str) -> Settings:
    """The settings of the oned.conf at ``path``; defaults when it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as conf:
            text = conf.read()
    except FileNotFoundError:
        return Settings()
    return _settings_from_config_module(path, text) or settings_from_text(text)


# --- the lock --------------------------------------------------------------------------------


@contextlib.contextmanager
def one_lock(loc: Locations) -> Iterator[None]:
    """Hold the install's lock file so that two `one` commands do not start or stop at once.

    The kernel drops the lock when `one` exits, so a lock file left behind is never stale.
    """
    os.makedirs(os.path.dirname(loc.lock), exist_ok=True)
    with open(loc.lock, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OneError(f"another 'one' command holds the lock {loc.lock}") from None
        yield


# --- start -----------------------------------------------------------------------------------


def check_not_running(services: Sequence[Service], loc: Locations) -> None:
    for service in services:
        pid = running_pid(service, loc, tidy=True)
        if pid is not None:
            raise OneError(still_running_message(pid))


def check_user(loc: Locations, uid: int) -> None:
    """NOTE: as OpenNebula, whose packages run oned as oneadmin: never as root system-wide.

    A self-contained install (ONE_LOCATION) is the user's own, root included (the e2e tests)."""
    if uid == 0 and loc.root is None:
        raise OneError(root_message())


def check_auth(settings: Settings, loc: Locations) -> list[str]:
    """A first start on SQLite creates oneadmin from the ONE_AUTH file, so it must exist.

    Returns a warning when the file is there but readable beyond what UMASK allows."""
    auth = default_auth_file()
    first_start = settings.db_backend == "sqlite" and not os.path.exists(loc.db_file)
    if first_start and not os.path.isfile(auth):
        raise OneError(missing_auth_message(auth))
    try:
        mode = stat.S_IMODE(os.stat(auth).st_mode)
    except OSError:
        return []
    return [readable_auth_message(auth, mode)] if mode & settings.umask & 0o077 else []


def backup_logs(services: Sequence[Service], loc: Locations) -> None:
    """NOTE: OpenNebula 2.0's `one -b`: move the old log aside with a timestamp."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    for service in services:
        log = service.log_file(loc)
        if os.path.exists(log):
            os.replace(log, f"{log}.{stamp}")


def start(services: Sequence[Service], loc: Locations, backup: bool) -> str:
    """Start every service; on a failure stop those already started. Returns the message.

    The services inherit oned.conf's UMASK, set here before any file is made."""
    check_user(loc, os.geteuid())
    settings = read_settings(loc.oned_conf)
    os.umask(settings.umask)
    for directory in (loc.var, loc.log, loc.run):
        os.makedirs(directory, 0o750, exist_ok=True)
    check_not_running(services, loc)
    for warning in check_auth(settings, loc):
        print(f"one: {warning}", file=sys.stderr)
    if any(s.listens for s in services) and port_answers(connect_address(settings)):
        raise OneError(f"port {settings.port} is already in use by another process")
    if backup:
        backup_logs(services, loc)
    started: list[Service] = []
    try:
        for service in services:
            start_service(service, settings, loc)
            started.append(service)
    except OneError:
        stop(list(reversed(started)), loc)
        raise
    return f"{joined([s.label for s in services])} started"


# --- stop and status -------------------------------------------------------------------------


def stop(services: Sequence[Service], loc: Locations) -> str:
    """Stop the running services, last started first. Returns the message."""
    stopped = []
    for service in reversed(services):
        pid = running_pid(service, loc, tidy=True)
        if pid is None:
            continue
        stop_pid(pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(service.pid_file(loc))
        stopped.append(service.label)
    if not stopped:
        return "ONE is not running"
    return f"{joined(list(reversed(stopped)))} stopped"


def status(services: Sequence[Service], loc: Locations) -> tuple[list[str], bool]:
    """One line per service, and whether all of them run."""
    lines, all_running = [], True
    for service in services:
        pid = running_pid(service, loc)
        if pid is None:
            lines.append(f"{service.name}: stopped")
            all_running = False
        else:
            lines.append(f"{service.name}: running (PID {pid})")
    return lines, all_running


# --- command line ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="one",
        description="Start, stop or show the onecloud services (oned and the scheduler "
        "mm_sched) of this install.",
        epilog=(
            "Files: with ONE_LOCATION set, $ONE_LOCATION/etc/oned.conf and pid files, logs and "
            "the lock in $ONE_LOCATION/var; otherwise /etc/one/oned.conf, /var/run/one, "
            "/var/log/one and /var/lock/one. The first start with the SQLite backend needs the "
            "ONE_AUTH file ($ONE_AUTH or ~/.one/one_auth) to create the oneadmin account. "
            "Files are made with oned.conf's UMASK (077: readable by their owner only). A "
            "system-wide install refuses to start as root: run it as oneadmin. "
            "Exit status: 0 on success, 1 on failure; status: 0 when all services run, 3 when not."
        ),
    )
    top.add_argument(
        "-b", "--backup", action="store_true", help="with start: back up oned.log and sched.log"
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    begin = commands.add_parser(
        "start",
        help="start oned, wait until it answers, then start mm_sched",
        description="Start the services.",
    )
    begin.add_argument(
        "-b",
        "--backup",
        action="store_true",
        default=argparse.SUPPRESS,
        help="move the old oned.log and sched.log aside (<log>.<timestamp>) first",
    )
    commands.add_parser("stop", help="stop the services (SIGTERM, SIGKILL after 15 s)")
    commands.add_parser("status", help="show whether each service runs (exit 3 if one does not)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    loc = locations()
    try:
        if args.command == "status":
            lines, all_running = status(services(loc), loc)
            print("\n".join(lines))
            return 0 if all_running else 3
        with one_lock(loc):
            if args.command == "start":
                print(start(services(loc), loc, backup=args.backup))
            else:
                print(stop(services(loc), loc))
    except OneError as error:
        print(f"one: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"one: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
