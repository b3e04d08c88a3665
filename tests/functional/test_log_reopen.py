"""Log rotation without losing lines: oned and mm_sched reopen their log on SIGHUP, so logrotate
can rename the file and signal (share/logrotate/onecloud) while API calls keep logging."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path

from tests.functional.econe_setup import configure_econe
from tests.functional.oned_process import OnedProcess

LOG_LINE = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[\w+\]\[[EWID]\]: ")
SESSION = "oneadmin:onecloud"


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def allocate_users(endpoint: str, prefix: str, stop: threading.Event, made: list[str]) -> None:
    """one.user.allocate ``<prefix><n>`` until ``stop``; each success logs one line."""
    server = xmlrpc.client.ServerProxy(endpoint)
    n = 0
    while not stop.is_set():
        name = f"{prefix}{n}"
        ok, *_ = server.one.user.allocate(SESSION, name, "pw")
        assert ok, name
        made.append(name)
        n += 1


def test_oned_reopens_oned_log_on_sighup_without_losing_or_splitting_a_line(tmp_path):
    """Calls from 4 clients run while oned.log is renamed and oned gets SIGHUP: every user
    created is logged exactly once, in whole lines, the later ones in the new oned.log."""
    oned = OnedProcess(tmp_path / "one").start()
    try:
        log = oned.location / "var" / "oned.log"
        stop, made = threading.Event(), []
        clients = [
            threading.Thread(target=allocate_users, args=(oned.endpoint, f"c{i}u", stop, made))
            for i in range(4)
        ]
        for client in clients:
            client.start()
        wait_for(lambda: len(made) > 40, 30, "40 users before the rotation")
        rotated = log.with_name("oned.log.1")
        os.rename(log, rotated)
        os.kill(oned.proc.pid, signal.SIGHUP)
        wait_for(lambda: log.exists() and "oned.log reopened" in log.read_text(), 10, "reopen")
        before = len(made)
        wait_for(lambda: len(made) > before + 40, 30, "40 users after the rotation")
        stop.set()
        for client in clients:
            client.join(30)
        after_reopen = made[before + 4 :]  # created after the reopen (4 calls may be in flight)
    finally:
        assert oned.stop() == 0
    old, new = rotated.read_text().splitlines(), log.read_text().splitlines()
    assert all(LOG_LINE.match(line) for line in old + new), "a split or foreign line"
    assert "oned.log reopened (SIGHUP)" in new[0]
    assert new[-1].endswith("[ONE][I]: oned stopped")
    created = [m.group(1) for m in re.finditer(r"User (\S+) \(\d+\) created", "\n".join(old + new))]
    assert sorted(created) == sorted(made), "a user created without its line, or twice"
    in_new = set(re.findall(r"User (\S+) \(\d+\) created", "\n".join(new)))
    assert set(after_reopen) <= in_new


def test_mm_sched_reopens_sched_log_on_sighup(tmp_path):
    """mm_sched's sched.log, renamed, is recreated at SIGHUP and the rounds log there."""
    oned = OnedProcess(tmp_path / "one").start()
    log = oned.location / "var" / "sched.log"
    sched = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "-t", "0.2", "--live-interval", "0.1"],
        env=oned.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: log.exists() and log.stat().st_size > 0, 20, "sched.log")
        os.rename(log, log.with_name("sched.log.1"))
        sched.send_signal(signal.SIGHUP)
        wait_for(lambda: log.exists() and "sched.log reopened" in log.read_text(), 10, "reopen")
        assert sched.poll() is None, "mm_sched died of SIGHUP"
    finally:
        sched.send_signal(signal.SIGTERM)
        assert sched.wait(15) == 0, sched.stderr.read() if sched.stderr else ""
        oned.stop()
    text = log.read_text()
    assert all(LOG_LINE.match(line) for line in text.splitlines())
    assert text.rstrip().endswith("Scheduler stopped")
    assert "Init Scheduler Log system" in log.with_name("sched.log.1").read_text()


def test_econe_server_reopens_its_log_on_sighup(tmp_path):
    """econe-server.log, renamed, is recreated at SIGHUP and the requests log there."""
    oned = OnedProcess(tmp_path / "one")
    port = configure_econe(oned)
    log = oned.location / "var" / "econe-server.log"
    econe = subprocess.Popen(
        [str(Path(sys.executable).parent / "econe-server"), "start", "-f"],
        env=oned.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def get() -> None:
        with contextlib.suppress(urllib.error.HTTPError):  # 4xx: no Action, still logged
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?probe=1", timeout=10).read()

    try:
        wait_for(lambda: log.exists() and "listening" in log.read_text(), 20, "econe log")
        os.rename(log, log.with_name("econe-server.log.1"))
        econe.send_signal(signal.SIGHUP)
        reopened = "econe-server.log reopened"
        wait_for(lambda: log.exists() and reopened in log.read_text(), 10, "reopen")
        get()
        wait_for(lambda: " GET " in log.read_text(), 10, "the request's line")
        assert econe.poll() is None, "econe-server died of SIGHUP"
    finally:
        econe.send_signal(signal.SIGTERM)
        econe.wait(15)
    assert "listening" in log.with_name("econe-server.log.1").read_text()
