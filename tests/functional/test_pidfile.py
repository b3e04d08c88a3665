"""oned -f and its pid file after a crash (issue 11, finding 4): a stale file never blocks a
start, a live oned of the same install always does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def oned(tmp_path):
    process = OnedProcess(tmp_path / "one")
    yield process
    process.stop()


@pytest.fixture
def spawn():
    """Start helper processes; kill and reap them at the end."""
    started: list[subprocess.Popen] = []

    def start(argv, **kwargs) -> subprocess.Popen:
        started.append(subprocess.Popen(argv, **kwargs))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait(10)


def pid_file(oned: OnedProcess) -> Path:
    return oned.location / "var" / "oned.pid"


def started_over(oned: OnedProcess, pid: int, why: str) -> None:
    """oned starts although its pid file names ``pid``, warns why and writes its own pid."""
    pid_file(oned).write_text(f"{pid}\n")
    oned.start()
    assert f"Replacing the stale pid file {pid_file(oned)}: PID {pid} {why}" in oned.log
    assert pid_file(oned).read_text() == f"{oned.proc.pid}\n"


def refused(oned: OnedProcess) -> str:
    """Start a second ``oned -f`` of this install: it must exit at once, saying why."""
    second = subprocess.run(
        [sys.executable, "-m", "oned", "-f"], env=oned.env, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert second.returncode != 0
    return second.stderr + second.stdout


def test_a_pid_file_naming_an_unrelated_live_process_is_replaced(oned, spawn):
    """Finding 4: a pid reused after a crash by some other program no longer blocks oned."""
    started_over(oned, spawn(SLEEP).pid, "is not oned")


def test_a_pid_file_naming_a_zombie_is_replaced(oned, spawn):
    """Finding 4: a zombie is not running, even though kill(pid, 0) succeeds."""
    zombie = spawn(["true"])
    wait_for(
        lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    )
    started_over(oned, zombie.pid, "is a zombie")


def test_a_pid_reused_by_a_process_of_the_same_install_that_is_not_oned_is_replaced(oned, spawn):
    """Finding 4: the same ONE_LOCATION is not enough; the process must be oned."""
    started_over(oned, spawn(SLEEP, env=oned.env).pid, "is not oned")


def test_a_pid_file_naming_the_oned_of_another_install_is_replaced(oned, tmp_path):
    """Finding 4: an oned running for another ONE_LOCATION does not count as this one."""
    other = OnedProcess(tmp_path / "other").start()
    try:
        started_over(oned, other.proc.pid, "is the oned of another install")
    finally:
        other.stop()


def test_a_dead_pid_is_replaced(oned, spawn):
    """The process of a crashed oned is gone: its pid file is stale."""
    gone = spawn(["true"])
    gone.wait(10)
    started_over(oned, gone.pid, "is not running")


def test_a_second_oned_of_the_same_install_refuses_to_start(oned):
    """The running oned holds its pid file's lock: the second names its pid and exits."""
    oned.start()
    assert f"oned is already running (PID {oned.proc.pid}" in refused(oned)
    assert pid_file(oned).read_text() == f"{oned.proc.pid}\n"


def test_a_live_oned_of_the_same_install_named_by_the_file_refuses_a_start(oned, spawn):
    """Without the lock (an older oned), the pid is still checked: an oned with this
    ONE_LOCATION is running, so the start is refused."""
    fake = oned.location / "oned"
    fake.write_text("import time\ntime.sleep(60)\n")
    running = spawn([sys.executable, str(fake), "-f"], env=oned.env)
    wait_for(lambda: "oned" in Path(f"/proc/{running.pid}/cmdline").read_text())
    pid_file(oned).write_text(f"{running.pid}\n")
    assert f"oned is already running (PID {running.pid}" in refused(oned)
