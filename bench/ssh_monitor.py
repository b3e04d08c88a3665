"""SSH monitoring benchmark: rounds of MONITOR through the real one_im_ssh to namespace hosts.

The 3 namespace hosts (share/scripts/test-hosts) are each monitored many times per round, to
stand for ``--count`` hosts (default 100) monitored over reused connections; then the same
probes through a fresh ``ssh host sh probes.sh`` per host, as OpenNebula 1.4/2.0 did; then,
optionally, the throughput of one_im_dummy.

    .venv/bin/python bench/ssh_monitor.py [--count 100] [--rounds 5] [--dummy 20000]
    .venv/bin/python bench/ssh_monitor.py --hosts 10.77.0.11,10.77.0.12   # hosts already up

The hosts share this machine's 2 cores with the driver, so a round's wall time includes the
probes themselves; the "echo probe" round shows the cost of the driver and SSH alone.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.im_ssh import make_bundle
from tests.e2e.driver_process import DriverProcess

ROOT = Path(__file__).resolve().parents[1]
TEST_HOSTS = ROOT / "share" / "scripts" / "test-hosts"
PREFIX, SUBNET = "otbench", "10.77.251"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> float:
    """CPU seconds spent (not idle) by the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICKS


def monitor_round(driver: DriverProcess, hosts: list[str], count: int, first_id: int) -> dict:
    """``count`` MONITOR requests at once over ``hosts``; wall time, driver and machine CPU."""
    driver_cpu, busy, started = cpu_seconds(driver.proc.pid), machine_busy(), time.perf_counter()
    driver.send(*[f"MONITOR {first_id + n} {hosts[n % len(hosts)]} 0" for n in range(count)])
    failures = sum(
        " FAILURE " in driver.reply("MONITOR", first_id + n, timeout=120) for n in range(count)
    )
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "driver_cpu": cpu_seconds(driver.proc.pid) - driver_cpu,
        "machine_cpu": machine_busy() - busy,
        "failures": failures,
    }


def ssh_rounds(args: argparse.Namespace, hosts: list[str], arguments: str, label: str) -> None:
    driver = DriverProcess("one_im_ssh", arguments)
    try:
        driver.init()
        warm = monitor_round(driver, hosts, len(hosts), 0)  # copies probes, opens connections
        assert warm["failures"] == 0, driver.seen
        rounds = [
            monitor_round(driver, hosts, args.count, 1000 * (r + 1)) for r in range(args.rounds)
        ]
    finally:
        driver.close()
    report(label, args.count, rounds)


def report(label: str, count: int, rounds: list[dict]) -> None:
    wall = statistics.median(r["wall"] for r in rounds)
    driver_ms = statistics.median(r["driver_cpu"] for r in rounds) * 1000 / count
    machine_ms = statistics.median(r["machine_cpu"] for r in rounds) * 1000 / count
    print(
        f"{label}: {count} hosts per round, median of {len(rounds)} rounds: "
        f"{wall * 1000:.0f} ms/round = {count / wall:.0f} hosts/s; per host "
        f"{wall * 1000 / count:.2f} ms wall, {driver_ms:.2f} ms driver CPU, "
        f"{machine_ms:.2f} ms machine CPU (driver + sshd + probe); "
        f"failures {sum(r['failures'] for r in rounds)}"
    )


def fresh_ssh(hosts: list[str], count: int, remote: str, concurrency: int) -> None:
    """The same bundle, one new ``ssh`` process and connection per host."""

    def one(n: int) -> float:
        started = time.perf_counter()
        host = hosts[n % len(hosts)]
        subprocess.run(
            ["ssh", "-o", "BatchMode=yes", f"root@{host}", "sh", remote, host],
            capture_output=True,
            check=True,
        )
        return time.perf_counter() - started

    busy, started = machine_busy(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        each = list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    print(
        f"fresh ssh per host ({concurrency} at once): {count} hosts in {wall * 1000:.0f} ms = "
        f"{count / wall:.0f} hosts/s; per host {statistics.median(each) * 1000:.0f} ms latency, "
        f"{(machine_busy() - busy) * 1000 / count:.1f} ms machine CPU"
    )


def dummy_throughput(count: int) -> None:
    started = time.perf_counter()
    driver = DriverProcess("one_im_dummy")
    driver.init()
    ready = time.perf_counter()
    try:
        driver.send(*[f"MONITOR {n} dummy{n} 0" for n in range(count)])
        replies = driver.next_lines(count)
        wall = time.perf_counter() - ready
        assert all(line.startswith("MONITOR SUCCESS ") for line in replies)
    finally:
        driver.close()
    print(
        f"one_im_dummy: start to INIT SUCCESS {(ready - started) * 1000:.0f} ms; "
        f"{count} MONITOR pipelined in {wall * 1000:.0f} ms = {count / wall:,.0f}/s"
    )


def echo_probes(folder: Path) -> Path:
    for sub in ("common.d", "kvm.d"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    probe = folder / "kvm.d" / "echo.sh"
    probe.write_text("#!/bin/sh\necho HYPERVISOR=kvm TOTALCPU=100\n")
    probe.chmod(0o755)
    return folder


def namespace_hosts() -> list[str]:
    out = subprocess.run(
        [str(TEST_HOSTS), "up", "3", "--prefix", PREFIX, "--subnet", SUBNET],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.split()[1] for line in out.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", help="comma-separated addresses (default: 3 namespace hosts)")
    parser.add_argument("--count", type=int, default=100, help="hosts per round (100)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fresh-concurrency", type=int, default=15)
    parser.add_argument("--dummy", type=int, default=20000, help="MONITORs for one_im_dummy")
    args = parser.parse_args()
    hosts = args.hosts.split(",") if args.hosts else namespace_hosts()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            remote = f"{tmp}/remote"
            ssh_rounds(args, hosts, f"kvm --remote-dir {remote}", "one_im_ssh kvm probes")
            echo = echo_probes(Path(tmp) / "echo")
            ssh_rounds(args, hosts, f"kvm --remote-dir {remote} --probes {echo}", "echo probe")
            bundle = Path(remote, "im", make_bundle(ROOT / "share" / "im_probes", "kvm").name)
            fresh_ssh(hosts, args.count, str(bundle), args.fresh_concurrency)
    finally:
        if not args.hosts:
            subprocess.run([str(TEST_HOSTS), "down", "--prefix", PREFIX], check=False)
    if args.dummy:
        dummy_throughput(args.dummy)


if __name__ == "__main__":
    main()
