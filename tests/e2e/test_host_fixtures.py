"""The namespace test hosts keep to the session's own key and clean up after a failed start
(issue 12, finding 9)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from drivers.ssh import SshPool
from tests.e2e.host_fixtures import hosts_up, namespace_pids

pytestmark = pytest.mark.e2e


def sshd_command_line(name: str) -> str:
    pid = namespace_pids(name)[0]
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_hosts_trust_only_a_key_of_the_session(test_hosts, private_home):
    """Finding 9: the hosts' sshd read root's ~/.ssh/authorized_keys, the script appended the
    key to it and kept the key in the operator's ~/.ssh."""
    assert test_hosts.ssh_dir == private_home / ".ssh"
    key = (test_hosts.ssh_dir / "id_ed25519.pub").read_text()
    authorized = Path(f"/run/{test_hosts.prefix}-authorized_keys")
    assert authorized.read_text() == key
    name, address = test_hosts[0]
    assert f"AuthorizedKeysFile={authorized}" in sshd_command_line(name)
    operators = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "authorized_keys"
    assert not operators.exists() or key not in operators.read_text()
    pool = SshPool(connect_timeout=5)  # paramiko finds the key in $HOME/.ssh, the session's
    try:
        assert pool.run(address, ["true"], timeout=30).ok
    finally:
        pool.close()


def test_hosts_whose_start_fails_halfway_are_removed(tmp_path, monkeypatch):
    """Finding 9: a failed ``up`` left the bridge and namespaces it had made."""
    prefix = f"of{os.getpid() % 100000}"
    monkeypatch.setattr("tests.e2e.host_fixtures.free_subnet", lambda: "10.77.300")
    with pytest.raises(RuntimeError, match="test-hosts up"), hosts_up(prefix, tmp_path / "ssh"):
        pass
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-br" not in links
    assert not [line for line in spaces.splitlines() if line.startswith(prefix)]
    assert not Path(f"/run/{prefix}-authorized_keys").exists()
