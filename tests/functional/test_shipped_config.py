"""The shipped sched.conf against a real oned and mm_sched (issue 16, item 6): as shipped it
changes nothing and warns of nothing; an edit takes effect when mm_sched starts again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.waiting import wait_for

SHIPPED = Path(__file__).resolve().parents[2] / "share" / "etc" / "sched.conf"


def started_log(oned) -> str:
    """Start mm_sched, wait for its configuration header, stop it; sched.log's new text."""
    log_file, pid_file = oned.location / "var" / "sched.log", oned.location / "var" / "sched.pid"
    before = log_file.read_text() if log_file.exists() else ""
    proc = subprocess.Popen([sys.executable, "-m", "scheduler"], env=oned.env)
    try:
        # the pid file is written once the header is logged and SIGTERM stops it cleanly
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        wait_for(lambda: not pid_file.exists(), timeout=15)
    return log_file.read_text()[len(before) :]


def test_an_edit_of_the_shipped_sched_conf_takes_effect_at_the_next_start(oned):
    conf = oned.location / "etc" / "sched.conf"
    shutil.copy(SHIPPED, conf)
    first = started_log(oned)
    assert f"Configuration: {conf}" in first
    assert "    MAX_DISPATCH = 30" in first and "[W]" not in first
    conf.write_text(SHIPPED.read_text().replace("#MAX_DISPATCH = 30", "MAX_DISPATCH = 7"))
    second = started_log(oned)
    assert "    MAX_DISPATCH = 7" in second and "MAX_DISPATCH = 30" not in second
