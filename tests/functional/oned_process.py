"""A real oned process in a temporary self-contained install, for functional tests.

Every ``OnedProcess`` is remembered in ``STARTED``; tests/conftest.py calls ``cleanup`` on those
a test made once the test and its fixtures are done, so a fixture that fails halfway (after
``start`` or ``one start``, before its own teardown) leaves no oned, mm_sched or driver running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAEMONS = ("sched", "oned")  # the pid files `one start` leaves in var/, in stopping order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OnedProcess:
    """oned -f under ``location`` (its ONE_LOCATION), listening on 127.0.0.1:``port``."""

    def __init__(self, location: Path, admin: str = "oneadmin:onecloud", conf_extra: str = ""):
        self.location = location
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        STARTED.append(self)
        for sub in ("etc", "var", "lib/mads", ".one"):
            (location / sub).mkdir(parents=True, exist_ok=True)
        self.auth_file = location / ".one" / "one_auth"
        self.auth_file.write_text(admin + "\n")
        self.write_conf(conf_extra)

    def write_conf(self, extra: str = "") -> None:
        text = (ROOT / "oned.conf.example").read_text()
        text = re.sub(r"(?m)^PORT\s*=.*$", f"PORT = {self.port}", text)
        text = re.sub(r"(?m)^LISTEN_ADDRESS\s*=.*$", "", text)
        (self.location / "etc" / "oned.conf").write_text(
            text + f'\nLISTEN_ADDRESS = "127.0.0.1"\n{extra}\n'
        )

    def set(self, **attributes: object) -> OnedProcess:
        """Replace single attributes of oned.conf (before start), e.g. ``set(DEBUG_LEVEL=0)``."""
        conf = self.location / "etc" / "oned.conf"
        text = conf.read_text()
        for name, value in attributes.items():
            text, count = re.subn(rf"(?m)^{name}\s*=.*$", f"{name} = {value}", text)
            if not count:
                text += f"\n{name} = {value}\n"
        conf.write_text(text)
        return self

    def children(self, pattern: str) -> list[int]:
        """Pids of oned's child processes whose command line contains ``pattern``."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if self.proc and int(stat[1]) == self.proc.pid and pattern in cmdline:
                found.append(int(entry.name))
        return found

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/RPC2"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ONE_LOCATION=str(self.location),
            ONE_AUTH=str(self.auth_file),
            ONE_XMLRPC=self.endpoint,
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=str(ROOT),
        )
        return env

    @property
    def log(self) -> str:
        path = self.location / "var" / "oned.log"
        return path.read_text() if path.exists() else ""

    def start(self, timeout: float = 20) -> OnedProcess:
        """oned -f, listening within ``timeout`` seconds; when it does not, it is killed (with
        its drivers: its own process group) before the RuntimeError saying why."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oned", "-f"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise RuntimeError(f"oned exited with {self.proc.returncode}: {err or out}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"oned did not listen on {self.port} within {timeout}s\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                kill_group(self.proc.pid)
                self.proc.wait()

    def cleanup(self, timeout: float = 15) -> list[str]:
        """Stop whatever of this cloud still runs: oned -f, and the oned and mm_sched of
        ``one start`` (by their pid files); the names of those that were still running."""
        left = [] if self.proc is None or self.proc.poll() is not None else ["oned -f"]
        self.stop(timeout=timeout)
        for stem in DAEMONS:
            pid = daemon_pid(self.location / "var" / f"{stem}.pid")
            if pid is not None:
                left.append(f"{stem} ({pid})")
                stop_pid(pid, timeout)
        return left

    def run_cli(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run one of the CLI commands (``onehost``, ``oneuser``...) against this oned."""
        module = {"one": "cli.one"}.get(argv[0], f"cli.{argv[0]}")
        return subprocess.run(
            [sys.executable, "-c", f"import sys, {module} as m; sys.exit(m.main())", *argv[1:]],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


STARTED: list[OnedProcess] = []


def kill_group(pid: int) -> None:
    """SIGKILL the process group of ``pid`` (oned and its drivers), never the tests' own group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        group = os.getpgid(pid)
        if group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """A running process (a zombie waiting for its parent is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s*[ZX]", status, re.M)


def daemon_pid(pid_file: Path) -> int | None:
    """The live process a pid file of ``one start`` names, if any."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def stop_pid(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL (with its group) when it is still there after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    kill_group(pid)


def check_survives_kill_9(oned: OnedProcess) -> None:
    """Allocate a user, a host and a VM, SIGKILL oned, restart it: all three are there."""
    import pyone

    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    admin.user.allocate("helen", "mypass", "core", [])
    admin.host.allocate("host01", "im_kvm", "vmm_kvm", -1)
    vid = admin.vm.allocate("NAME = survivor\nMEMORY = 64")
    oned.stop(signal.SIGKILL)
    oned.start()
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert admin.vm.info(vid).NAME == "survivor"
    assert [u.NAME for u in admin.userpool.info().USER] == ["oneadmin", "helen"]
    assert admin.hostpool.info().HOST[0].NAME == "host01"
    assert admin.vm.allocate("MEMORY = 64") == vid + 1
