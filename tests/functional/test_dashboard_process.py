"""one-dashboard as a process: `one start`/`one stop` include it once dashboard.conf says
`enabled: true`; `one-dashboard start|stop` detach and stop it by its pid file; a bad
dashboard.conf stops the start with one line; SIGHUP reopens the log after a rotation."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.functional.dashboard_setup import Client, DashboardProcess, stop_all
from tests.functional.oned_process import BIN, OnedProcess, free_port
from tests.waiting import wait_for


def dashboard_conf(oned: OnedProcess, text: str) -> int:
    port = free_port()
    conf = f"port: {port}\none_xmlrpc: {oned.endpoint}\n{text}"
    (oned.location / "etc" / "dashboard.conf").write_text(conf)
    return port


def one_dashboard(oned: OnedProcess, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "one-dashboard"), *argv], env=oned.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_one_start_and_stop_include_an_enabled_dashboard(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    port = dashboard_conf(oned, "enabled: true\n")
    pid_file = oned.location / "var" / "one-dashboard.pid"
    try:
        started = oned.run_cli("one", "start")
        assert started.returncode == 0, started.stderr
        assert "one-dashboard" in started.stdout
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10))
        client = Client(f"http://127.0.0.1:{port}/")
        assert wait_for(lambda: client.sign_in("oneadmin", "onecloud")[0] == 200, 10)
        assert "one-dashboard" in oned.run_cli("one", "status").stdout
        stopped = oned.run_cli("one", "stop")
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15)
        assert not pid_file.exists()
    finally:
        oned.run_cli("one", "stop")


def test_a_disabled_dashboard_is_not_started(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    dashboard_conf(oned, "enabled: false\n")
    try:
        started = oned.run_cli("one", "start")
        assert started.returncode == 0, started.stderr
        assert "dashboard" not in started.stdout
        assert not (oned.location / "var" / "one-dashboard.pid").exists()
    finally:
        oned.run_cli("one", "stop")


def test_one_dashboard_start_detaches_and_stop_stops_it(tmp_path):
    oned = OnedProcess(tmp_path / "one").start()
    port = dashboard_conf(oned, "")
    try:
        started = one_dashboard(oned, "start")
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("one-dashboard started (PID ")
        again = one_dashboard(oned, "start")
        assert again.returncode == 1 and "already running" in again.stderr
        assert Client(f"http://127.0.0.1:{port}/").sign_in("oneadmin", "onecloud")[0] == 200
        stopped = one_dashboard(oned, "stop")
        assert (stopped.returncode, stopped.stdout) == (0, "one-dashboard stopped\n")
        assert one_dashboard(oned, "stop").returncode == 1
    finally:
        one_dashboard(oned, "stop")
        oned.stop()


def test_a_wrong_dashboard_conf_is_one_line_and_exit_1(tmp_path):
    oned = OnedProcess(tmp_path / "one")
    dashboard_conf(oned, "sesion_lifetime: 60\n")
    done = one_dashboard(oned, "-f")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"one-dashboard: {oned.location}/etc/dashboard.conf: unknown setting 'sesion_lifetime'"
    ]
    started = one_dashboard(oned, "start")
    assert started.returncode == 1 and "unknown setting 'sesion_lifetime'" in started.stderr


def test_sighup_reopens_the_log_after_a_rotation(tmp_path):
    oned = OnedProcess(tmp_path / "one").start()
    try:
        process = DashboardProcess(oned).start()
        client = Client(process.url)
        client.get("/api/session")
        wait_for(lambda: "GET /api/session" in process.log)
        rotated = process.log_path.with_suffix(".log.1")
        process.log_path.rename(rotated)
        process.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: process.log_path.exists(), 10)
        client.get("/api/vms")
        wait_for(lambda: "GET /api/vms" in process.log, 10)
        assert "GET /api/vms" not in rotated.read_text()
        assert process.stop() == 0
    finally:
        stop_all()
        oned.stop()


def test_sigterm_stops_it_while_oned_holds_a_live_feed_call(tmp_path):
    """A signed-in user's feed has a `one.system.changes` call held by oned (up to 25 s): a
    SIGTERM ends that call and the process exits by itself, not after the hold or a SIGKILL."""
    oned = OnedProcess(tmp_path / "one").start()
    try:
        process = DashboardProcess(oned).start()
        client = Client(process.url)
        assert client.sign_in("oneadmin", "onecloud")[0] == 200
        client.events(lambda found: any(name == "reset" for name, _ in found), timeout=30)
        assert process.stop(timeout=10) == 0  # a SIGKILL after 10 s would be -9
        assert "Traceback" not in process.log
    finally:
        stop_all()
        oned.stop()
