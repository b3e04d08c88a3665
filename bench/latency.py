"""Latency benchmark: from one.vm.allocate returning to RUNNING, with an explicit deploy, at a
steady arrival rate (open loop), through oned and the real dummy driver processes.

    .venv/bin/python bench/latency.py [--rate 20] [--vms 300] [--hosts 10] [--fs auto]

ONE_LOCATION is on a fresh ext4 file system when run as root (bench/fresh_fs.py).
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fresh_fs
from bench.api import machine, percentile
from bench.schedule import Rpc, wait
from tests.functional.oned_process import OnedProcess

RUNNING = re.compile(rb"&lt;VM&gt;&lt;ID&gt;(\d+)&lt;/ID&gt;.*?&lt;LCM_STATE&gt;3&lt;", re.S)


def watch(port: int, started: dict[int, float], done: dict[int, float], stop: threading.Event):
    rpc = Rpc(port)
    while not stop.is_set():
        reply = rpc.call("one.vmpool.info", -2, -1, -1, 3)
        now = time.perf_counter()
        for match in RUNNING.finditer(reply):
            vid = int(match[1])
            if vid in started and vid not in done:
                done[vid] = now
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--vms", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=10)
    fresh_fs.add_option(parser)
    args = parser.parse_args()
    with fresh_fs.folder(args.fs) as (tmp, where):
        oned = OnedProcess(Path(tmp) / "one").set(DEBUG_LEVEL=1, VM_POLLING_INTERVAL=0)
        oned.start()
        try:
            print(f"machine: {machine()}")
            print(f"ONE_LOCATION: {where}")
            rpc = Rpc(oned.port)
            for h in range(args.hosts):
                rpc.call("one.host.allocate", f"h{h}", "im_dummy", "vmm_dummy", "tm_dummy")
            wait(
                lambda: rpc.call("one.hostpool.info").count(b"&lt;STATE&gt;2&lt;") >= args.hosts, 30
            )
            started: dict[int, float] = {}
            done: dict[int, float] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=watch, args=(oned.port, started, done, stop))
            watcher.start()
            begin = time.perf_counter()
            for n in range(args.vms):
                time.sleep(max(0.0, begin + n / args.rate - time.perf_counter()))
                reply = rpc.call("one.vm.allocate", "CPU = 0.1\nMEMORY = 64")
                vid = int(re.search(rb"<int>(\d+)</int>", reply)[1])
                started[vid] = time.perf_counter()
                rpc.call("one.vm.deploy", vid, n % args.hosts)
            wait(lambda: len(done) >= args.vms, 60)
            stop.set()
            watcher.join()
            latencies = sorted((done[v] - started[v]) * 1000 for v in started)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            print(
                f"allocate -> RUNNING at {args.rate:g}/s ({args.vms} VMs, explicit deploy): "
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms"
            )
        finally:
            oned.stop()


if __name__ == "__main__":
    main()
