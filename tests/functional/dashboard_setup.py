"""A real one-dashboard in front of a test's oned: `start_dashboard(oned)` writes the cloud's
etc/dashboard.conf (a free port, oned's endpoint) and starts `one-dashboard -f`; the
`dashboard` fixture does it and stops it at teardown, also when the test failed.

    from tests.functional.dashboard_setup import dashboard, start_dashboard  # noqa: F401

    def test_x(dashboard):
        url, process = dashboard  # url: "http://127.0.0.1:PORT/"
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


class Client:
    """A browser's part, without a browser: the session cookie and CSRF token of one sign-in,
    JSON requests, and the event stream read with a deadline."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.cookie = ""
        self.csrf = ""

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        if self.https:
            context = ssl._create_unverified_context()  # the tests' self-signed certificate
            return http.client.HTTPSConnection(*self.address, timeout=timeout, context=context)
        return http.client.HTTPConnection(*self.address, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict | None = None
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        """(status, the JSON answer or None, the response); the CSRF token and the cookie
        of the sign-in are sent unless `headers` gives them."""
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if self.cookie:
            sent["Cookie"] = self.cookie
        if self.csrf and method != "GET":
            sent["X-CSRF-Token"] = self.csrf
        sent.update(headers or {})
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
        conn = self.connection()
        try:
            conn.request(method, path, data, sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        kind = response.getheader("Content-Type") or ""
        answer = json.loads(raw) if raw and kind.startswith("application/json") else raw or None
        return response.status, answer, response

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)[:2]

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.request("POST", path, {} if body is None else body)[:2]

    def sign_in(self, user: str, password: str) -> tuple[int, Any]:
        status, answer, response = self.request(
            "POST", "/api/login", {"user": user, "password": password}
        )
        if status == 200:
            self.cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
            self.csrf = answer["csrf"]
        return status, answer

    def events(self, until: Any, timeout: float = 10) -> list[tuple[str, Any]]:
        """Read /api/events until `until(events so far)` is true; AssertionError after
        `timeout` s. Events are (name, JSON data); comments are left out."""
        conn = self.connection(timeout)
        deadline = time.monotonic() + timeout
        found: list[tuple[str, Any]] = []
        try:
            conn.request("GET", "/api/events", headers={"Cookie": self.cookie})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            name = "message"
            while not until(found):
                conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    line = response.readline().decode().rstrip("\n")
                except TimeoutError:
                    raise AssertionError(f"no such event within {timeout} s: {found}") from None
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    found.append((name, json.loads(line[6:])))
                    name = "message"
        finally:
            conn.close()
        return found


def start_dashboard(oned: OnedProcess, **conf: object) -> tuple[str, DashboardProcess]:
    """Write etc/dashboard.conf for `oned` (extra keys in `conf`) and start one-dashboard;
    (its URL, the process). The caller stops it (`process.stop()`), or uses the fixture."""
    process = DashboardProcess(oned, **conf).start()
    return process.url, process


def stop_one(process: DashboardProcess | None) -> None:
    """Stop one one-dashboard started here (a test's own, beside a module's shared one)."""
    if process is not None:
        if process in STARTED:
            STARTED.remove(process)
        process.stop()


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


__all__ = ["Client", "DashboardProcess", "dashboard", "start_dashboard", "stop_all", "stop_one"]
