"""Real cluster hosts made of network namespaces running sshd, for end-to-end tests.

Import the fixture into a conftest (tests/e2e/conftest.py does):
``from tests.e2e.host_fixtures import test_hosts  # noqa: F401``.

``test_hosts`` (session) runs ``share/scripts/test-hosts up 3`` with a prefix and subnet of its
own and ``down`` at the end, even when tests fail or ``up`` itself fails halfway (and, at the next
start, for sessions that were killed before they could). Its SSH key, known_hosts and the hosts'
authorized_keys are the session's own: the key in ``$HOME/.ssh`` of the session's temporary home
(tests/conftest.py ``private_home``), where the drivers' paramiko finds it; the operator's
``~/.ssh`` is never read nor written. It yields a ``TestHosts``: ``.prefix``, ``.hosts`` (a list of
``(name, address)``, also what iterating over it gives), and ways to make a host misbehave
for a while: ``freeze(name)`` (every process of the host stopped: connections hang),
``stop(name)`` (sshd and its sessions killed: connections refused), ``restore()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_HOSTS = ROOT / "share" / "scripts" / "test-hosts"
LOCK = Path("/run/onecloud-test-hosts.lock")
OURS = re.compile(r"^ot(\d+)x\d+$")  # namespaces made by this fixture: ot<pid>x<n>
COUNT = 3


def run_script(*args: str) -> str:
    result = subprocess.run(
        [str(TEST_HOSTS), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"test-hosts {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def namespace_pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def signal_host(name: str, signum: int) -> None:
    for pid in namespace_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass
class TestHosts:
    """The namespace hosts of this test session."""

    prefix: str
    hosts: list[tuple[str, str]]
    ssh_dir: Path
    frozen: set[str] = field(default_factory=set)

    __test__ = False  # not a test class, whatever its name

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, index: int) -> tuple[str, str]:
        return self.hosts[index]

    def address(self, name: str) -> str:
        return dict(self.hosts)[name]

    def freeze(self, name: str) -> None:
        """Stop (SIGSTOP) every process of the host: it accepts TCP but never answers."""
        self.frozen.add(name)
        signal_host(name, signal.SIGSTOP)

    def stop(self, name: str) -> None:
        """Kill the host's sshd and sessions: new connections are refused."""
        signal_host(name, signal.SIGCONT)
        signal_host(name, signal.SIGKILL)

    def restore(self) -> None:
        """Every host up again: frozen ones continued, stopped sshds started."""
        for name in self.frozen:
            signal_host(name, signal.SIGCONT)
        self.frozen.clear()
        run_script(
            "up", str(len(self.hosts)), "--prefix", self.prefix, "--subnet", self.subnet,
            "--ssh-dir", str(self.ssh_dir),
        )  # fmt: skip

    @property
    def subnet(self) -> str:
        return self.hosts[0][1].rsplit(".", 1)[0]


def remove_abandoned() -> None:
    """Hosts of earlier sessions whose process is gone (killed before their teardown)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    pids = {int(m.group(1)) for line in names.splitlines() if (m := OURS.match(line.split()[0]))}
    for pid in pids - {os.getpid()}:
        if not Path(f"/proc/{pid}").exists():
            run_script("down", "--prefix", f"ot{pid}x")


def free_subnet() -> str:
    """A 10.77.X subnet no interface of this machine uses (X from 20 up)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for third in range(20, 250):
        if f" 10.77.{third}." not in used:
            return f"10.77.{third}"
    raise RuntimeError("no free 10.77.X subnet for test hosts")


def missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "test hosts need root (network namespaces)"
    for tool in ("ip", "/usr/sbin/sshd", "ssh-keygen", "unshare"):
        if shutil.which(tool) is None:
            return f"test hosts need {tool} (install.sh --deps-only installs it)"
    return None


@pytest.fixture(scope="session")
def test_hosts(private_home: Path) -> Iterator[TestHosts]:
    """Three namespace hosts reachable over SSH as root; removed at the end of the session."""
    if reason := missing_tools():
        pytest.skip(reason)
    with hosts_up(f"ot{os.getpid()}x", private_home / ".ssh") as hosts:
        yield hosts


@contextlib.contextmanager
def hosts_up(prefix: str, ssh_dir: Path, count: int = COUNT) -> Iterator[TestHosts]:
    """``count`` hosts under ``prefix`` with the key of ``ssh_dir``; down again on the way out,
    whatever happened (``up`` failing halfway included)."""
    hosts = TestHosts(prefix, [], ssh_dir)
    try:
        with open(LOCK, "w") as lock:  # workers of one run must not pick the same subnet
            fcntl.flock(lock, fcntl.LOCK_EX)
            remove_abandoned()
            out = run_script(
                "up", str(count), "--prefix", prefix, "--subnet", free_subnet(),
                "--ssh-dir", str(ssh_dir),
            )  # fmt: skip
        hosts.hosts = [tuple(line.split()) for line in out.splitlines()]  # type: ignore[misc]
        yield hosts
    finally:
        for name in hosts.frozen:
            signal_host(name, signal.SIGCONT)
        run_script("down", "--prefix", prefix, "--ssh-dir", str(ssh_dir))
