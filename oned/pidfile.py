"""oned's pid file: held with an flock while oned runs, so two oneds of one install never both
start, and judged by what its pid really is, so a file left by a crash never blocks a start.

A pid file names a running oned of this install only when that process is alive and not a
zombie, its command line runs ``oned`` and it runs with this install's ``ONE_LOCATION`` (none
for a system-wide install). Anything else (a pid reused by an unrelated process or by the oned
of another install, a zombie, garbage) makes the file stale: it is replaced with a warning.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

from oned.bootstrap import StartupError
from oned.filemodes import FILE_MODE

_held: list[int] = []  # the descriptor whose flock this process keeps until it exits


def acquire(path: str, warn: Callable[[str], None], location: str | None) -> None:
    """Take ``path`` for this process: StartupError when an oned of this install holds it or
    runs under the pid it names; ``warn`` says when a stale file is replaced."""
    fd = _locked(path)
    try:
        pid = _read(fd)
        if pid and pid != os.getpid():
            why = stale_because(pid, location)
            if why is None:
                raise StartupError(f"oned is already running (PID {pid}, {path})")
            warn(f"Replacing the stale pid file {path}: PID {pid} {why}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except BaseException:
        os.close(fd)
        raise
    _held.append(fd)


def _locked(path: str) -> int:
    """An open descriptor of ``path`` holding its flock (the file may be replaced meanwhile:
    then lock the new one)."""
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read(fd)
            os.close(fd)
            raise StartupError(f"oned is already running (PID {pid or '?'}, {path})") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise StartupError(f"{path} keeps being replaced; is another oned starting?")


def _read(fd: int) -> int:
    text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else 0


def stale_because(pid: int, location: str | None) -> str | None:
    """None when ``pid`` is a live oned running with ``location`` as its ONE_LOCATION, else
    why the pid does not count ("is not running", "is a zombie", "is not oned: ...")."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "is not running"
    if state in ("Z", "X"):
        return "is a zombie"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = [a.decode(errors="replace") for a in cmdline.read().split(b"\0")]
    except OSError:
        return "is not running"
    if not any(os.path.basename(arg) == "oned" for arg in args[:3]):
        return f"is not oned: {' '.join(args).strip()[:80]}"
    theirs = _location_of(pid)
    if theirs is None:
        return None  # another user's process: assume the worst
    if _real(theirs) != _real(location or ""):
        return f"is the oned of another install (ONE_LOCATION={theirs or 'unset'})"
    return None


def _location_of(pid: int) -> str | None:
    """The process's ONE_LOCATION ("" when unset), or None when its environment is unreadable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return None
    for entry in entries:
        if entry.startswith(b"ONE_LOCATION="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return ""


def _real(location: str) -> str:
    return os.path.realpath(location) if location else ""
