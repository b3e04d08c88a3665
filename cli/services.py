"""The services `one` runs, oned and the scheduler (and econe-server and one-dashboard when
configured): launched, awaited, stopped, and their pid files.

NOTE: as OpenNebula's share/scripts/one (reference §12.4): pid files under the install's var/ (or
/var/run/one); oned first, then `mm_sched -p PORT` (sched.pid, sched.log). Unlike the 1.4 script,
a start waits until oned answers on its XML-RPC port instead of sleeping one second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from dashboard.config import enabled as dashboard_enabled
from oned.locations import Locations

DEFAULT_PORT = 2633
DEFAULT_UMASK = 0o077  # oned.conf's UMASK when it sets none
FILE_MODE = 0o640  # as oned/filemodes.py: less the umask, 0600 (0640 with UMASK 027)
START_TIMEOUT = 20.0  # s for a service to answer after it was launched
STOP_TIMEOUT = 15.0  # s between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05


class OneError(Exception):
    """A failure reported to the user as one line on stderr, exit status 1."""


@dataclass(frozen=True)
class Service:
    """A process that `one` starts and stops.

    ``name`` is the executable; ``label`` is the word used in "... started"; ``args`` may contain
    ``{port}``; a service with ``listens`` is ready when its XML-RPC port answers, one with
    ``ready_by_pid_file`` when it wrote its pid file (after it listened), otherwise when it is
    still alive after ``settle`` seconds; ``writes_pid_file`` says the service writes (and
    removes) its own. Its pid, log and output files are ``<stem>.pid/.log/.out`` (stem: the name
    unless given).
    """

    name: str
    label: str
    args: tuple[str, ...]
    listens: bool = False
    ready_by_pid_file: bool = False
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
# The EC2 front end, once configured (etc/econe/econe.conf, or the seed's etc/econe.conf).
ECONE = Service("econe-server", "econe-server", ("start", "-f"), writes_pid_file=True)
# The web dashboard, once etc/dashboard.conf says `enabled: true`.
DASHBOARD = Service(
    "one-dashboard", "one-dashboard", ("start", "-f"), writes_pid_file=True, ready_by_pid_file=True
)


def services(loc: Locations) -> tuple[Service, ...]:
    """What `one` starts and stops here: oned and mm_sched, then econe-server and one-dashboard
    when configured (one-dashboard also while it runs: disabled since, `one stop` stops it)."""
    configured = (os.path.join(loc.etc, "econe", "econe.conf"), os.path.join(loc.etc, "econe.conf"))
    econe = (ECONE,) if any(map(os.path.isfile, configured)) else ()
    dashboard = dashboard_enabled(loc.etc) or running_pid(DASHBOARD, loc) is not None
    return SERVICES + econe + ((DASHBOARD,) if dashboard else ())


@dataclass(frozen=True)
class Settings:
    """What `one` needs from oned.conf."""

    port: int = DEFAULT_PORT
    listen_address: str = "0.0.0.0"
    db_backend: str = "sqlite"
    umask: int = DEFAULT_UMASK


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


# --- launch and wait -------------------------------------------------------------------------


def launch(service: Service, settings: Settings, loc: Locations) -> subprocess.Popen[bytes]:
    """Start ``service`` detached, its output appended to <log>/<name>.out."""
    argv = [find_executable(service.name)]
    argv += [arg.format(port=settings.port) for arg in service.args]
    env = dict(os.environ)
    if loc.root:
        env["ONE_LOCATION"] = os.path.abspath(loc.root)
    out_fd = os.open(service.out_file(loc), os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with open(out_fd, "ab") as out:
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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(fd, "w", encoding="ascii") as pid_file:
        pid_file.write(f"{pid}\n")


def wait_ready(
    service: Service,
    process: subprocess.Popen[bytes],
    settings: Settings,
    out_offset: int,
    loc: Locations,
) -> None:
    """Return once ``service`` is ready; raise OneError with its last words when it died."""
    waits = service.listens or service.ready_by_pid_file
    deadline = time.monotonic() + (START_TIMEOUT if waits else service.settle)
    while True:
        if process.poll() is not None:
            reason = last_line(service.out_file(loc), out_offset) or last_line(
                service.log_file(loc)
            )
            raise OneError(f"{service.name} failed to start: {reason or 'no message'}")
        if service.listens and port_answers(connect_address(settings)):
            return
        if service.ready_by_pid_file and read_pid(service.pid_file(loc)) == process.pid:
            return
        if time.monotonic() >= deadline:
            if not waits:
                return
            where = f"on port {settings.port} " if service.listens else ""
            raise OneError(
                f"{service.name} did not answer {where}within {START_TIMEOUT:.0f} s "
                f"(see {service.log_file(loc)})"
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


# --- stop ------------------------------------------------------------------------------------


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
