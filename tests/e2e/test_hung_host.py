"""A host that hangs costs only its own work (issue 11, finding 5 and "Fault isolation").

A frozen host accepts TCP (the kernel answers the handshake) and never says anything: its
sshd is SIGSTOPped. The drivers run each host's actions in a lane of its own
(drivers/protocol.py) and the SSH pool makes one connection attempt per host that the other
commands wait for (drivers/ssh.py), so actions for the other hosts keep their time.

These tests measure real time; their bounds are generous (several times what the action
takes here) because the test machine is shared, and far below what the old code took (58 s
for a healthy transfer with 20 queued to a frozen host). Figures go to the report
(``record_property``) and, with ``-s``, to stdout as ``TIMING`` lines.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from drivers.ssh import SshPool
from tests.e2e.driver_process import DriverProcess

pytestmark = pytest.mark.e2e
FE = socket.gethostname()
QUEUED = 20  # transfers queued to the frozen host


class SilentListener:
    """A TCP port that accepts connections and never sends a byte (a frozen sshd)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_commands_for_an_unanswering_host_share_one_connection_attempt():
    """Ten commands at once for a host that never answers: one connection attempt, which
    they all wait for (each bounded by its own deadline), and all fail when it times out.
    The old pool dialled once per command, one after the other under a per-host lock
    (10 x 2 s here)."""
    listener = SilentListener()
    pool = SshPool(connect_timeout=2.0, known_hosts=os.devnull, note=lambda text: None)
    results, start = [], threading.Barrier(10)

    def command() -> None:
        start.wait(10)
        results.append(pool.run(f"127.0.0.1:{listener.port}", ["true"], timeout=30))

    started = time.monotonic()
    threads = [threading.Thread(target=command) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - started
    listener.close()
    pool.close()
    assert [r.code for r in results] == [255] * 10, [r.stderr for r in results]
    assert len(listener.accepted) <= 2
    assert elapsed < 10, f"{elapsed:.1f} s"


@pytest.fixture
def tm():
    driver = DriverProcess("one_tm", "ssh")
    assert driver.init() == "INIT SUCCESS - -"
    yield driver
    driver.close()


def clone(tm: DriverProcess, tmp_path: Path, vid: int, image: Path, address: str) -> float:
    """Send a CLONE of ``image`` to ``address``; returns when it was sent (monotonic)."""
    script = tmp_path / f"transfer.{vid}"
    script.write_text(f"CLONE {FE}:{image} {address}:{tmp_path}/{address}/{vid}/disk.0\n")
    tm.send(f"TRANSFER {vid} {script}")
    return time.monotonic()


def timed_clone(tm: DriverProcess, tmp_path: Path, vid: int, image: Path, address: str) -> float:
    sent = clone(tm, tmp_path, vid, image, address)
    assert tm.reply("TRANSFER", vid, timeout=120) == f"TRANSFER SUCCESS {vid} -"
    return time.monotonic() - sent


def test_transfers_to_a_healthy_host_keep_their_time_while_a_frozen_host_has_20_queued(
    tm, tmp_path, test_hosts, record_property
):
    """Finding 5 of issue 11: with one host's sshd stopped and 20 transfers queued to it, a
    transfer to a healthy host took 58 s instead of about 1 s (all 15 threads queued on the
    frozen host). Now it takes its usual time (bound: 3 times the baseline plus 3 s)."""
    (_, healthy), (frozen_name, frozen) = test_hosts[0], test_hosts[1]
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(1 << 20) * 4)
    timed_clone(tm, tmp_path, 1, image, healthy)  # connects once, as a warm driver has
    baseline = statistics.median(timed_clone(tm, tmp_path, n, image, healthy) for n in (2, 3, 4))
    test_hosts.freeze(frozen_name)
    try:
        for n in range(QUEUED):
            clone(tm, tmp_path, 100 + n, image, frozen)
        during = [timed_clone(tm, tmp_path, n, image, healthy) for n in (5, 6, 7)]
        replies = [tm.reply("TRANSFER", 100 + n, timeout=300) for n in range(QUEUED)]
    finally:
        test_hosts.restore()
    worst = max(during)
    record_property("healthy_transfer_baseline_seconds", round(baseline, 2))
    record_property("healthy_transfer_with_frozen_host_seconds", round(worst, 2))
    print(
        f"TIMING healthy CLONE median {baseline:.3f} s alone, median "
        f"{statistics.median(during):.3f} s (worst {worst:.3f} s) with a frozen host"
    )
    assert all(reply.startswith("TRANSFER FAILURE") for reply in replies), replies
    assert worst < 3 * baseline + 3, (baseline, during)
