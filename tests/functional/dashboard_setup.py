"""A real one-dashboard in front of a test's oned: `start_dashboard(oned)` writes the cloud's
etc/dashboard.conf (a free port, oned's endpoint) and starts `one-dashboard -f`; the
`dashboard` fixture does it and stops it at teardown, also when the test failed.

    from tests.functional.dashboard_setup import dashboard, start_dashboard  # noqa: F401

    def test_x(dashboard):
        url, process = dashboard  # url: "http://127.0.0.1:PORT/"
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.functional.oned_process import BIN, OnedProcess, free_port

STARTED: list[DashboardProcess] = []


class DashboardProcess:
    """`one-dashboard -f` under `oned`'s ONE_LOCATION, on 127.0.0.1:`port`."""

    def __init__(self, oned: OnedProcess, **conf: object) -> None:
        self.oned = oned
        self.port = free_port()
        settings = {"host": "127.0.0.1", "port": self.port, "one_xmlrpc": oned.endpoint, **conf}
        self.conf = oned.location / "etc" / "dashboard.conf"
        self.conf.write_text(json.dumps(settings))  # JSON is YAML
        scheme = "https" if "ssl_cert" in conf else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.oned.location / "var" / "one-dashboard.log"

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, timeout: float = 20) -> DashboardProcess:
        out = open(self.oned.location / "var" / "one-dashboard.out", "ab")  # noqa: SIM115
        with out:
            self.proc = subprocess.Popen(
                [str(BIN / "one-dashboard"), "-f"],
                env=self.oned.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"one-dashboard exited with {self.proc.returncode}: {self.out}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"one-dashboard did not listen on {self.port} within {timeout} s")

    @property
    def out(self) -> str:
        path = self.oned.location / "var" / "one-dashboard.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, SIGKILL after `timeout`; its exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def start_dashboard(oned: OnedProcess, **conf: object) -> tuple[str, DashboardProcess]:
    """Write etc/dashboard.conf for `oned` (extra keys in `conf`) and start one-dashboard;
    (its URL, the process). The caller stops it (`process.stop()`), or uses the fixture."""
    process = DashboardProcess(oned, **conf).start()
    return process.url, process


def stop_all() -> None:
    """Stop every one-dashboard started here that still runs."""
    while STARTED:
        STARTED.pop().stop()


@pytest.fixture
def dashboard(oned):
    """(url, process) of a one-dashboard in front of the test's oned, stopped at teardown."""
    try:
        yield start_dashboard(oned)
    finally:
        stop_all()


__all__ = ["DashboardProcess", "dashboard", "start_dashboard", "stop_all"]
