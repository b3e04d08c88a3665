"""Monitoring benchmark: N dummy hosts through the real one_im_dummy driver process.

The hosts are created first; then oned is restarted once every host is due, so its first tick
is one cycle of all of them, which oned logs ("Monitoring cycle: N hosts in X s") when every
answer has been received, parsed and stored.

    .venv/bin/python bench/monitor.py [--hosts 1000] [--cycles 5]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import machine
from tests.functional.oned_process import OnedProcess

INTERVAL = 5
CYCLE = re.compile(r"Monitoring cycle: (\d+) hosts in ([\d.]+) s \((\d+) failed\)")


def create_hosts(port: int, count: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for hid in range(count):
        args = ("oneadmin:onecloud", f"dummy{hid:05d}", "im_dummy", "vmm_dummy", "tm_dummy")
        conn.request("POST", "/RPC2", xmlrpc.client.dumps(args, "one.host.allocate").encode())
        reply = conn.getresponse().read()
        if b"<boolean>1</boolean>" not in reply[:200]:
            raise SystemExit(f"host.allocate failed: {reply[:300]!r}")


def set_conf(oned: OnedProcess, interval: int) -> None:
    """Every host due every ``interval`` seconds; INFO logging (the cycle lines, no DEBUG)."""
    conf = oned.location / "etc" / "oned.conf"
    text = re.sub(
        r"(?m)^HOST_MONITORING_INTERVAL\s*=.*$", f"HOST_MONITORING_INTERVAL = {interval}",
        conf.read_text(),
    )  # fmt: skip
    conf.write_text(re.sub(r"(?m)^DEBUG_LEVEL\s*=.*$", "DEBUG_LEVEL = 2", text))


def full_cycles(log: str, hosts: int) -> list[tuple[float, int]]:
    return [(float(m[2]), int(m[3])) for m in CYCLE.finditer(log) if int(m[1]) == hosts]


def first_full_cycle(oned: OnedProcess, hosts: int) -> tuple[float, int]:
    """Restart oned after every host became due: its first tick is one cycle of all of them."""
    oned.stop()
    time.sleep(INTERVAL + 1)
    oned.start()
    deadline = time.monotonic() + 60 + hosts / 100
    while time.monotonic() < deadline:
        cycles = full_cycles(oned.log.split("Init OpenNebula Log system")[-1], hosts)
        if cycles:
            return cycles[0]
        time.sleep(0.5)
    seen = "\n".join(m[0] for m in CYCLE.finditer(oned.log))
    raise SystemExit(f"no cycle of all {hosts} hosts; cycles seen:\n{seen[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        oned = OnedProcess(Path(tmp) / "one")
        set_conf(oned, interval=3600)
        oned.start()
        try:
            print(f"machine: {machine()}")
            started = time.monotonic()
            create_hosts(oned.port, args.hosts)
            print(f"{args.hosts} hosts created in {time.monotonic() - started:.1f} s")
            set_conf(oned, interval=INTERVAL)
            cycles = [first_full_cycle(oned, args.hosts) for _ in range(args.cycles)]
            times = [t for t, _ in cycles]
            print(
                f"monitoring cycle of {args.hosts} dummy hosts (sent, answered, parsed, stored): "
                f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
                f"max {max(times):.2f} s over {len(times)} cycles; "
                f"failures {sum(f for _, f in cycles)}"
            )
        finally:
            oned.stop()


if __name__ == "__main__":
    main()
