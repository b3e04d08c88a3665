"""one: start, stop and show the onecloud services of this install: oned and the scheduler.

NOTE: follows OpenNebula's share/scripts/one (reference §12.4): `one [-b] start|stop`, pid files
and the lock under the install's var/ (or /var/run/one, /var/lock/one), "ONE is still running
(PID:N). Please try 'one stop' first.", and the ONE_AUTH check before the first start; oned
first, then `mm_sched -p PORT` (sched.pid, sched.log), "oned and scheduler started". Unlike the
1.4 script, start waits until oned answers on its XML-RPC port instead of sleeping one second.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from oned.locations import Locations, default_auth_file, locations

DEFAULT_PORT = 2633
START_TIMEOUT = 20.0  # s for a service to answer after it was launched
STOP_TIMEOUT = 15.0  # s between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05


class OneError(Exception):
    """A failure reported to the user as one line on stderr, exit status 1."""


@dataclass(frozen=True)
class Service:
    """A process that `one` starts and stops.

    ``name`` is the executable; ``label`` is the word used in "... started"; ``args`` may contain
    ``{port}``; a service with ``listens`` is ready when its XML-RPC port answers, otherwise when
    it is still alive after ``settle`` seconds; ``writes_pid_file`` says the service writes (and
    removes) its own. Its pid, log and output files are ``<stem>.pid/.log/.out`` (stem: the name
    unless given).
    """

    name: str
    label: str
    args: tuple[str, ...]
    listens: bool = False
    writes_pid_file: bool = False
    settle: float = 1.0
    stem: str = ""

    def _file(self, folder: str, suffix: str) -> str:
        return os.path.join(folder, f"{self.stem or self.name}.{suffix}")

    def pid_file(self, loc: Locations) -> str:
        return self._file(loc.run, "pid")

    def log_file(self, loc: Locations) -> str:
        return self._file(loc.log, "log")

    def out_file(self, loc: Locations) -> str:
        return self._file(loc.log, "out")


# Started in this order, stopped in the reverse one.
# NOTE: OpenNebula 1.4's script starts `mm_sched -p $PORT`, and so do we, so that sched.conf's
# knobs are not overridden (2.0 added -t 30 -m 300 -d 30 -h 1, sched.conf's defaults anyway).
SERVICES: tuple[Service, ...] = (
    Service("oned", "oned", ("-f",), listens=True, writes_pid_file=True),
    Service("mm_sched", "scheduler", ("-p", "{port}"), writes_pid_file=True, stem="sched"),
)


@dataclass(frozen=True)
class Settings:
    """What `one` needs from oned.conf."""

    port: int = DEFAULT_PORT
    listen_address: str = "0.0.0.0"
    db_backend: str = "sqlite"


# --- messages --------------------------------------------------------------------------------


def joined(labels: Sequence[str]) -> str:
    """``["oned", "scheduler"]`` -> ``"oned and scheduler"`` (the 1.4 script's wording)."""
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def still_running_message(pid: int) -> str:
    return f"ONE is still running (PID:{pid}). Please try 'one stop' first."


def missing_auth_message(path: str) -> str:
    return (
        f"ONE_AUTH file {path} not found: it is needed on the first start to create the "
        "oneadmin account (write 'oneadmin:<password>' in it, or set ONE_AUTH)"
    )


# --- oned.conf -------------------------------------------------------------------------------


def settings_from_text(text: str) -> Settings:
    """The PORT, LISTEN_ADDRESS and DB BACKEND of an oned.conf, read leniently.

    oned itself validates the file and reports errors; this only needs the values `one` uses.
    """
    text = re.sub(r"#[^\n]*", "", text)

    def value(pattern: str) -> str | None:
        match = re.search(pattern + r'\s*=\s*"?([^"\s,\]]+)', text, re.IGNORECASE | re.MULTILINE)
        return match.group(1) if match else None

    port = value(r"^\s*PORT")
    return Settings(
        port=int(port) if port and port.isdigit() else DEFAULT_PORT,
        listen_address=value(r"^\s*LISTEN_ADDRESS") or "0.0.0.0",
        db_backend=(value(r"\bBACKEND") or "sqlite").lower(),
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


def connect_address(settings: Settings) -> tuple[str, int]:
    """Where to check that oned answers: loopback unless it listens on one address only."""
    host = settings.listen_address
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    return host, settings.port


# --- processes and pid files -----------------------------------------------------------------


def read_pid(path: str) -> int | None:
    """The pid in a pid file, or None when the file is missing, empty or not a number."""
    try:
        with open(path, encoding="ascii", errors="replace") as pid_file:
            text = pid_file.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def pid_alive(pid: int, name: str | None = None) -> bool:
    """True when ``pid`` is a live process (not a zombie), running ``name`` when given.

    Checking the name keeps a pid file that survived a reboot from blocking a start because its
    number now belongs to an unrelated process.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    if not os.path.isdir("/proc/self"):
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:
        return False
    if not args[0]:
        return False  # a zombie: exited, not yet reaped
    if name is None:
        return True
    return any(os.path.basename(arg.decode(errors="replace")) == name for arg in args[:3])


def running_pid(service: Service, loc: Locations, tidy: bool = False) -> int | None:
    """The pid of the running ``service``, or None; with ``tidy`` a stale pid file is removed."""
    path = service.pid_file(loc)
    pid = read_pid(path)
    if pid is not None and pid_alive(pid, service.name):
        return pid
    if tidy:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return None


def port_answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def find_executable(name: str, argv0: str | None = None) -> str:
    """``name`` next to the running `one` (also through a symlink), else on PATH."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    for directory in (os.path.dirname(argv0), os.path.dirname(os.path.realpath(argv0))):
        candidate = os.path.join(directory, name)
        if directory and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise OneError(f"cannot find the {name} executable next to {argv0} or on PATH")
    return found


def last_line(path: str, offset: int = 0) -> str:
    """The last non-empty line of a file from ``offset`` on, or ''."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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


def check_auth(settings: Settings, loc: Locations) -> None:
    """A first start on SQLite creates oneadmin from the ONE_AUTH file, so it must exist."""
    if settings.db_backend != "sqlite" or os.path.exists(loc.db_file):
        return
    auth = default_auth_file()
    if not os.path.isfile(auth):
        raise OneError(missing_auth_message(auth))


def backup_logs(services: Sequence[Service], loc: Locations) -> None:
    """NOTE: OpenNebula 2.0's `one -b`: move the old log aside with a timestamp."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    for service in services:
        log = service.log_file(loc)
        if os.path.exists(log):
            os.replace(log, f"{log}.{stamp}")


def launch(service: Service, settings: Settings, loc: Locations) -> subprocess.Popen[bytes]:
    """Start ``service`` detached, its output appended to <log>/<name>.out."""
    argv = [find_executable(service.name)]
    argv += [arg.format(port=settings.port) for arg in service.args]
    env = dict(os.environ)
    if loc.root:
        env["ONE_LOCATION"] = os.path.abspath(loc.root)
    with open(service.out_file(loc), "ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    if not service.writes_pid_file:
        write_pid_file(service.pid_file(loc), process.pid)
    return process


def write_pid_file(path: str, pid: int) -> None:
    with open(path, "w", encoding="ascii") as pid_file:
        pid_file.write(f"{pid}\n")


def wait_ready(
    service: Service,
    process: subprocess.Popen[bytes],
    settings: Settings,
    out_offset: int,
    loc: Locations,
) -> None:
    """Return once ``service`` is ready; raise OneError with its last words when it died."""
    deadline = time.monotonic() + (START_TIMEOUT if service.listens else service.settle)
    while True:
        if process.poll() is not None:
            reason = last_line(service.out_file(loc), out_offset) or last_line(
                service.log_file(loc)
            )
            raise OneError(f"{service.name} failed to start: {reason or 'no message'}")
        if service.listens and port_answers(connect_address(settings)):
            return
        if time.monotonic() >= deadline:
            if not service.listens:
                return
            raise OneError(
                f"{service.name} did not answer on port {settings.port} "
                f"within {START_TIMEOUT:.0f} s (see {service.log_file(loc)})"
            )
        time.sleep(POLL_INTERVAL)


def start_service(service: Service, settings: Settings, loc: Locations) -> None:
    out_offset = file_size(service.out_file(loc))
    process = launch(service, settings, loc)
    try:
        wait_ready(service, process, settings, out_offset, loc)
    except OneError:
        stop_pid(process.pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(service.pid_file(loc))
        raise
    if not os.path.exists(service.pid_file(loc)):
        write_pid_file(service.pid_file(loc), process.pid)


def start(services: Sequence[Service], loc: Locations, backup: bool) -> str:
    """Start every service; on a failure stop those already started. Returns the message."""
    for directory in (loc.var, loc.log, loc.run):
        os.makedirs(directory, exist_ok=True)
    check_not_running(services, loc)
    settings = read_settings(loc.oned_conf)
    check_auth(settings, loc)
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


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL when ``pid`` is still there after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, timeout)


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
            lines, all_running = status(SERVICES, loc)
            print("\n".join(lines))
            return 0 if all_running else 3
        with one_lock(loc):
            if args.command == "start":
                print(start(SERVICES, loc, backup=args.backup))
            else:
                print(stop(SERVICES, loc))
    except OneError as error:
        print(f"one: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"one: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
