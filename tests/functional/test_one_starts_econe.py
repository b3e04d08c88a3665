"""`one start` runs econe-server too once etc/econe/econe.conf exists, and `one stop` stops it
(issue 15: the seed's econe-server beside oned and mm_sched)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.functional.econe_setup import configure_econe
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_one_start_and_stop_include_a_configured_econe_server(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    configure_econe(oned)
    pid_file = oned.location / "var" / "econe-server.pid"
    try:
        started = oned.run_cli("one", "start")
        assert started.returncode == 0, started.stderr
        assert "econe-server started" in started.stdout
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10))
        status = oned.run_cli("one", "status")
        assert "econe-server" in status.stdout, status.stdout
        stopped = oned.run_cli("one", "stop")
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15)
    finally:
        oned.run_cli("one", "stop")


def test_without_econe_conf_one_start_runs_oned_and_mm_sched_only(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    try:
        started = oned.run_cli("one", "start")
        assert started.returncode == 0, started.stderr
        assert "econe" not in started.stdout
    finally:
        oned.run_cli("one", "stop")
