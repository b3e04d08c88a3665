"""The test suite cleans up what it starts and cannot hang (issue 12, finding 9).

A fixture that fails after starting oned (``oned -f`` or ``one start``'s oned and mm_sched) used
to leave them running; a test could loop for ever; tests wrote to the operator's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.functional.oned_process import ROOT, OnedProcess, alive, daemon_pid, stop_pid

BROKEN_FIXTURE = """
import json
import pytest
from tests.functional.oned_process import OnedProcess, daemon_pid

@pytest.fixture
def broken_cloud(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr
    var = oned.location / "var"
    pids = [daemon_pid(var / "oned.pid"), daemon_pid(var / "sched.pid")]
    with open({pids_file!r}, "w") as out:
        json.dump(pids, out)
    raise RuntimeError("this fixture fails after one start, before its teardown")
    yield oned

def test_with_a_broken_fixture(broken_cloud):
    pass
"""


def test_an_oned_that_does_not_listen_in_time_is_killed_before_the_error(tmp_path):
    """Finding 9: OnedProcess.start raised on its deadline and left oned running."""
    oned = OnedProcess(tmp_path / "one")
    with pytest.raises(RuntimeError, match="did not listen"):
        oned.start(timeout=0)
    assert oned.proc is not None and oned.proc.poll() is not None


def test_a_fixture_that_fails_after_one_start_leaves_no_oned_nor_mm_sched(tmp_path):
    """Finding 9: the daemons of a fixture that errors before its teardown are stopped by the
    suite (tests/conftest.py), in a pytest session of its own."""
    pids_file = tmp_path / "pids.json"
    test_file = tmp_path / "test_broken.py"
    test_file.write_text(BROKEN_FIXTURE.format(pids_file=str(pids_file)))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest"]
    argv += ["--rootdir", str(tmp_path), str(test_file)]
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert "1 error" in result.stdout, result.stdout + result.stderr
    pids = [int(pid) for pid in pids_file.read_text().strip("[]\n").split(",")]
    left = [pid for pid in pids if alive(pid)]
    for pid in left:  # never leave them, even when this test fails
        stop_pid(pid, 15)
    assert left == [], "still running after the session: oned, mm_sched"


def test_every_test_has_a_deadline():
    """Finding 9: a test looping without a deadline hung a run for 16 minutes."""
    pytest.importorskip("pytest_timeout")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["timeout"] == 300
    assert "pytest-timeout" in (ROOT / "setup.cfg").read_text()


def test_tests_run_in_a_home_of_their_own(private_home):
    """Finding 9: the tests and what they start read and wrote the operator's ~/.ssh."""
    assert Path(os.environ["HOME"]) == private_home
    assert Path("~").expanduser() == private_home
    assert "SSH_AUTH_SOCK" not in os.environ
    oned = OnedProcess(private_home / "one")
    assert oned.env["HOME"] == str(private_home)


def test_a_pid_file_naming_a_dead_process_is_no_daemon(tmp_path):
    """cleanup never signals a pid that a stale pid file names."""
    stale = tmp_path / "oned.pid"
    stale.write_text("999999999\n")
    assert daemon_pid(stale) is None
