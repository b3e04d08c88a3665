"""`one-dashboard start|stop`: the detached server, its pid file and its stop.

As `one start` runs its services (cli/services.py, whose pid-file helpers these are): `start`
launches `one-dashboard start -f` in a session of its own, output to
`<log>/one-dashboard.out`, and waits until the child has listened and written
`<run>/one-dashboard.pid` (or exited: its last line is then the error). The pid file names a
running one-dashboard only when that pid is alive, not a zombie and runs one-dashboard (a file
left by a crash never blocks a start). `stop` sends SIGTERM, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

from cli.services import (
    DASHBOARD,
    FILE_MODE,
    file_size,
    find_executable,
    last_line,
    running_pid,
    stop_pid,
    write_pid_file,
)
from oned.locations import Locations

START_WAIT = 20.0


def claim(loc: Locations) -> bool:
    """Write this process's pid file; False when another one-dashboard of this install runs."""
    other = running_pid(DASHBOARD, loc)
    if other is not None and other != os.getpid():
        return False
    os.makedirs(loc.run, exist_ok=True)
    write_pid_file(DASHBOARD.pid_file(loc), os.getpid())
    return True


def release(loc: Locations) -> None:
    if running_pid(DASHBOARD, loc) == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(DASHBOARD.pid_file(loc))


def start(argv: list[str], loc: Locations) -> int:
    """Launch the detached server; 0 once it listens, 1 with its error otherwise."""
    pid = running_pid(DASHBOARD, loc, tidy=True)
    if pid is not None:
        print(f"one-dashboard is already running (PID {pid})", file=sys.stderr)
        return 1
    os.makedirs(loc.log, exist_ok=True)
    out_path = DASHBOARD.out_file(loc)
    offset = file_size(out_path)
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with open(out_fd, "ab") as out:
        child = subprocess.Popen(
            [find_executable(DASHBOARD.name), *argv, "-f"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(last_line(out_path, offset) or "one-dashboard exited", file=sys.stderr)
            return 1
        if running_pid(DASHBOARD, loc) == child.pid:
            print(f"one-dashboard started (PID {child.pid})")
            return 0
        time.sleep(0.05)
    stop_pid(child.pid)
    print(f"one-dashboard did not start within {START_WAIT:g} s; see {out_path}", file=sys.stderr)
    return 1


def stop(loc: Locations) -> int:
    pid = running_pid(DASHBOARD, loc, tidy=True)
    if pid is None:
        print("one-dashboard is not running", file=sys.stderr)
        return 1
    stop_pid(pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(DASHBOARD.pid_file(loc))
    print("one-dashboard stopped")
    return 0
