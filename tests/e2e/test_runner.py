"""drivers/runner.py and drivers/ssh.py against real processes and the namespace hosts' sshd."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from drivers.runner import run_local
from drivers.ssh import SshPool

pytestmark = pytest.mark.e2e


@pytest.fixture
def pool():
    pool = SshPool(connect_timeout=5)
    yield pool
    pool.close()


def connections_to(address: str) -> int:
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", "dst", address], capture_output=True, text=True
    ).stdout
    return len(out.splitlines())


# ---------------------------------------------------------------------------------------------
# local


def test_a_local_command_gives_its_code_and_both_outputs():
    """A non-zero exit is a value, never an exception."""
    result = run_local(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_a_local_timeout_kills_the_whole_process_group():
    """Children holding the pipes open do not keep the caller waiting."""
    started = time.monotonic()
    result = run_local(["sh", "-c", "echo begun; sleep 30 & sleep 30"], timeout=0.5)
    assert result.code == 124 and result.stdout == "begun\n"
    assert result.stderr == "timed out after 0.5 s"
    assert time.monotonic() - started < 5


def test_a_missing_local_command_is_code_127_naming_it():
    """Like a shell would say it, without a shell."""
    assert run_local(["/no/such/thing"], timeout=5).stderr == "command not found: /no/such/thing"


def test_a_local_command_can_be_cancelled():
    """The cancel hook kills the process at once."""
    hooks = []
    result = []
    sleeper = ["sleep", "30"]
    thread = threading.Thread(
        target=lambda: result.append(run_local(sleeper, timeout=60, on_cancel=hooks.append)),
        daemon=True,
    )
    thread.start()
    wait_for_hook(hooks, thread, result)
    hooks[0]()
    thread.join(5)
    assert result[0].code == 130


# ---------------------------------------------------------------------------------------------
# over SSH


def test_a_remote_command_gives_its_code_and_both_outputs(pool, test_hosts):
    """Exit code, stdout and stderr come back separately."""
    result = pool.run(test_hosts[0][1], ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_arguments_reach_the_remote_command_literally(pool, test_hosts, tmp_path):
    """argv is quoted for the remote shell: nothing in it is ever interpreted."""
    marker = tmp_path / "injected"
    args = ["a b", f"$(touch {marker})", "'", '"', ";", "*", "`id`", "\\", ""]
    result = pool.run(test_hosts[0][1], ["printf", "%s|", *args], timeout=30)
    assert result.stdout == "|".join(args) + "|"
    assert not marker.exists()


def test_output_without_a_final_newline_is_kept_exactly(pool, test_hosts):
    """The framing of the persistent shell adds and removes nothing."""
    result = pool.run(test_hosts[0][1], ["printf", "no newline"], timeout=30)
    assert result.stdout == "no newline"


def test_one_connection_per_host_serves_concurrent_commands(pool, test_hosts):
    """Five commands of a second each, at once, on one TCP connection, in about a second."""
    address = test_hosts[1][1]
    pool.run(address, ["true"], timeout=30)
    results, started = [], time.monotonic()
    threads = [
        threading.Thread(
            target=lambda: results.append(pool.run(address, ["sleep", "1"], timeout=30))
        )
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.code for r in results] == [0] * 5
    assert time.monotonic() - started < 4.5
    assert connections_to(address) == 1


def test_a_remote_timeout_is_code_124_and_the_host_stays_usable(pool, test_hosts):
    """The hung command's channel is closed; the next command runs at once."""
    address = test_hosts[0][1]
    result = pool.run(address, ["sleep", "30"], timeout=1)
    assert (result.code, result.stderr) == (124, "timed out after 1 s")
    assert pool.run(address, ["echo", "next"], timeout=10).stdout == "next\n"


def test_a_remote_command_can_be_cancelled(pool, test_hosts):
    """The cancel hook closes the channel; the reader wakes at once."""
    hooks, result = [], []
    address = test_hosts[0][1]
    thread = threading.Thread(
        target=lambda: result.append(
            pool.run(address, ["sleep", "30"], timeout=60, on_cancel=hooks.append)
        ),
        daemon=True,
    )
    thread.start()
    wait_for_hook(hooks, thread, result)
    time.sleep(0.2)  # let the command start on the host
    hooks[0]()
    thread.join(5)
    assert result[0].code == 130


def wait_for_hook(hooks: list, thread: threading.Thread, result: list, timeout: float = 30) -> None:
    """Until the runner handed over its cancel hook; fails with what it returned instead (an
    unreachable host answers without ever asking for one) or when ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while not hooks:
        if not thread.is_alive():
            pytest.fail(f"the command ended without a cancel hook: {result}")
        if time.monotonic() > deadline:
            pytest.fail(f"no cancel hook within {timeout} s")
        time.sleep(0.01)


def test_put_writes_a_file_atomically_with_its_mode(pool, test_hosts, tmp_path):
    """The folder is created; the file appears whole with the mode asked for."""
    target = tmp_path / "deep" / "er" / "probe.sh"
    result = pool.put(test_hosts[2][1], str(target), b"#!/bin/sh\necho hi\n", 0o750)
    assert result.ok, result
    assert target.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert target.stat().st_mode & 0o777 == 0o750
    assert list(target.parent.iterdir()) == [target]


def test_a_dead_cached_connection_is_made_again_once(pool, test_hosts):
    """sshd restarted between two commands: the second still succeeds."""
    name, address = test_hosts[1]
    assert pool.run(address, ["true"], timeout=30).ok
    test_hosts.stop(name)
    test_hosts.restore()
    assert pool.run(address, ["echo", "back"], timeout=30).stdout == "back\n"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("no-such-host.invalid", "cannot resolve host no-such-host.invalid"),
        ("{bridge}:2", "connection refused by {bridge} port 2"),
        ("nobody@{host}", "authentication failed for nobody@{host}"),
    ],
)
def test_unreachable_hosts_are_code_255_with_a_one_line_reason(pool, test_hosts, target, reason):
    """DNS failure, refused connection and failed login each say so."""
    address = test_hosts[0][1]
    bridge = address.rsplit(".", 1)[0] + ".1"
    result = pool.run(target.format(bridge=bridge, host=address), ["true"], timeout=10)
    assert result.code == 255
    assert result.stderr.startswith(reason.format(bridge=bridge, host=address))


def test_an_unknown_host_key_is_added_to_known_hosts(test_hosts, tmp_path):
    """NOTE: trust on first use, as OpenNebula's docs set StrictHostKeyChecking no."""
    known = tmp_path / "known_hosts"
    notes: list[str] = []
    pool = SshPool(known_hosts=str(known), note=notes.append)
    try:
        assert pool.run(test_hosts[2][1], ["true"], timeout=30).ok
    finally:
        pool.close()
    assert known.read_text().startswith(test_hosts[2][1] + " ")
    assert notes and "added the" in notes[0]


def test_a_changed_host_key_is_refused(test_hosts, tmp_path):
    """A key that differs from known_hosts is never accepted."""
    known = tmp_path / "known_hosts"
    other = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    assert other.returncode == 0
    key = (tmp_path / "k.pub").read_text().split()[:2]
    known.write_text(f"{test_hosts[2][1]} {' '.join(key)}\n")
    pool = SshPool(known_hosts=str(known))
    try:
        result = pool.run(test_hosts[2][1], ["true"], timeout=30)
    finally:
        pool.close()
    assert result.code == 255 and "differs" in result.stderr
