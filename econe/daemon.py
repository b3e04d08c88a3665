"""`econe-server start|stop`: the detached server, its pid file and its stop.

As `one start` runs oned and mm_sched (cli/services.py): `start` launches `econe-server start
-f` in a session of its own, output to `<log>/econe-server.out`, and waits until the child has
listened and written `<run>/econe-server.pid` (or exited: its last line is then the error).
The pid file names a running econe-server only when that pid is alive, not a zombie and runs
econe (a file left by a crash never blocks a start). `stop` sends SIGTERM and waits, then
SIGKILL after `GRACE` seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

PID = "econe-server.pid"
OUT = "econe-server.out"
START_WAIT = 20.0
GRACE = 10.0


def pid_file(locs: Any) -> str:
    return os.path.join(locs.run, PID)


def running(locs: Any) -> int | None:
    """The pid of this install's running econe-server, or None."""
    try:
        with open(pid_file(locs), encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_econe(pid) else None


def _is_econe(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"econe" in f.read()
    except (OSError, IndexError):
        return False


def claim(locs: Any) -> bool:
    """Write this process's pid file; False when another econe-server of this install runs."""
    other = running(locs)
    if other is not None and other != os.getpid():
        return False
    os.makedirs(locs.run, exist_ok=True)
    tmp = pid_file(locs) + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, pid_file(locs))
    return True


def release(locs: Any) -> None:
    if running(locs) == os.getpid():
        os.unlink(pid_file(locs))


def start(argv: list[str], locs: Any) -> int:
    """Launch the detached server; 0 once it listens, 1 with its error otherwise."""
    pid = running(locs)
    if pid is not None:
        print(f"econe-server is already running (PID {pid})", file=sys.stderr)
        return 1
    os.makedirs(locs.log, exist_ok=True)
    out_path = os.path.join(locs.log, OUT)
    with open(out_path, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "econe.server", *argv, "-f"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        offset = out.tell()
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(_last_line(out_path, offset) or "econe-server exited", file=sys.stderr)
            return 1
        if running(locs) == child.pid:
            print(f"econe-server started (PID {child.pid})")
            return 0
        time.sleep(0.05)
    print(f"econe-server did not start within {START_WAIT:g} s; see {out_path}", file=sys.stderr)
    return 1


def stop(locs: Any) -> int:
    pid = running(locs)
    if pid is None:
        print("econe-server is not running", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while _is_econe(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    if os.path.exists(pid_file(locs)) and running(locs) is None:
        os.unlink(pid_file(locs))
    print("econe-server stopped")
    return 0


def _last_line(path: str, offset: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            lines = [line for line in f.read().splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
