"""Memory benchmark (issue 18): oned's RSS with --vms VMs, where the bytes go, and what the
listing and single-read figures are at each step.

A real oned (SQLite, the shipped oned.conf.example, DEBUG_LEVEL 1, dummy drivers) in a
temporary ONE_LOCATION. The VMs are bench/api.py's (a NIC on a RANGED network, two DISKs),
allocated from 4 clients; the first ``--running`` are deployed round robin on ``--hosts`` dummy
hosts and waited for until RUNNING. oned's VmRSS (/proc) is read after each step:

1. started (no VM: the interpreter, Twisted, SQLAlchemy, the drivers' channels);
2. allocated and deployed;
3. ``one.vmpool.info`` (summaries) 20 times: its p50;
4. ``one.vm.info`` of ``--sweep`` different VMs, each once (cold: never asked before): p50/p99;
5. ``one.vm.info`` of one VM ``--reads`` times (hot): p50/p99;
6. ``one.vmpool.infoextended`` (every full VM) 20 times: its p50;
7. the same sweep as 4 again (after a full listing).

``--mmap-threshold BYTES`` sets glibc's MALLOC_MMAP_THRESHOLD_ for oned (see RESULTS.md).
``--trim`` ends with glibc's malloc_trim(0) called in oned through gdb, and its RSS after.
``--profile PATH`` starts oned through bench/oned_traced.py with ONECLOUD_TRACEMALLOC=PATH
(oned/memprofile.py): oned runs 2-3x slower and holds more, so its RSS is not comparable; at
the end it writes the per-category breakdown, which this script prints.

    .venv/bin/python bench/memory.py --vms 10000
    .venv/bin/python bench/memory.py --vms 20000 --running 2000 --hosts 20
    .venv/bin/python bench/memory.py --vms 10000 --profile /tmp/oned-mem.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import SESSION, allocate, create_network, machine, percentile, timed
from bench.restart import batches, multicall
from oned.memprofile import ENV
from tests.functional.oned_process import OnedProcess

TRACED = Path(__file__).resolve().parent / "oned_traced.py"
RUNNING = "<LCM_STATE>3</LCM_STATE>"


class TracedOned(OnedProcess):
    """oned started through bench/oned_traced.py, which writes its memory report at stop."""

    def __init__(self, location: Path, report: Path):
        super().__init__(location)
        self.report = report

    @property
    def env(self) -> dict[str, str]:
        return dict(super().env, **{ENV: str(self.report)})

    def start(self, timeout: float = 60) -> OnedProcess:
        """OnedProcess.start, with the wrapper in the place of ``-m oned``."""
        real = subprocess.Popen

        def wrapped(argv: list[str], **kwargs: object) -> subprocess.Popen:
            return real([argv[0], str(TRACED), *argv[3:]], **kwargs)  # type: ignore[call-overload]

        subprocess.Popen = wrapped  # type: ignore[misc, assignment]
        try:
            return super().start(timeout)
        finally:
            subprocess.Popen = real  # type: ignore[misc]


def rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in KB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def deploy(oned: OnedProcess, running: int, hosts: int, timeout: float = 600) -> float:
    """Deploy VMs 0..running-1 on ``hosts`` dummy hosts; seconds until all are RUNNING."""
    drivers = ("im_dummy", "vmm_dummy", "tm_dummy")
    multicall(
        oned.endpoint, [("one.host.allocate", (f"dummy{n:03d}", *drivers)) for n in range(hosts)]
    )
    started = time.monotonic()
    for part in batches(0, running):
        multicall(oned.endpoint, [("one.vm.deploy", (vid, vid % hosts)) for vid in part])
    rpc = xmlrpc.client.ServerProxy(oned.endpoint)
    while True:
        ok, xml, _ = rpc.one.vmpool.info(SESSION, -2, -1, -1, 3)
        if not ok:
            raise RuntimeError(f"one.vmpool.info failed: {xml}")
        if xml.count(RUNNING) >= running:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{xml.count(RUNNING)} of {running} VMs RUNNING after {timeout}s")
        time.sleep(0.5)


def sweep(port: int, vids: list[int]) -> list[float]:
    """one.vm.info of each VM once over one keep-alive socket (server time to last byte, as
    bench/api.py's ``timed``): milliseconds each."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1024 * 1024)
    samples = []
    for vid in vids:
        body = xmlrpc.client.dumps((SESSION, vid), "one.vm.info").encode()
        message = b"POST /RPC2 HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\n"
        message += b"Content-Length: %d\r\n\r\n" % len(body) + body
        start = time.perf_counter()
        sock.sendall(message)
        got = sock.recv_into(buf)
        head = buf.find(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", buf[:head]).group(1))  # type: ignore[union-attr]
        while got < head + 4 + length:
            got += sock.recv_into(memoryview(buf)[got:])
        samples.append((time.perf_counter() - start) * 1000)
    sock.close()
    return samples


def spread(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 0.5):.3f} ms, p99 {percentile(samples, 0.99):.3f} ms "
        f"({len(samples)} calls)"
    )


def listing(port: int, method: str, repeat: int = 20) -> str:
    body = xmlrpc.client.dumps((SESSION, -2, -1, -1, -1), method).encode()
    samples, size = timed(port, body, repeat)
    return (
        f"{size / 1e6:.1f} MB, p50 {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms"
    )


def measure(oned: OnedProcess, args: argparse.Namespace) -> None:
    pid = oned.proc.pid  # type: ignore[union-attr]

    def step(name: str, figure: str = "") -> None:
        mem = rss(pid)
        print(f"{name:<34} RSS {mem['VmRSS'] / 1024:6.1f} MB (peak {mem['VmHWM'] / 1024:6.1f})"
              f"{'  ' + figure if figure else ''}", flush=True)  # fmt: skip

    step("started, no VM")
    create_network(oned.port)
    rate = allocate(oned.port, args.vms, args.clients)
    took = deploy(oned, args.running, args.hosts) if args.running else 0.0
    step(f"{args.vms} VMs, {args.running} RUNNING", f"allocate {rate:.0f}/s, deploy {took:.1f} s")
    step("one.vmpool.info x20", listing(oned.port, "one.vmpool.info"))
    stride = max(1, args.vms // args.sweep)
    vids = list(range(args.vms - 1, -1, -stride))[: args.sweep]
    step("one.vm.info sweep (cold)", spread(sweep(oned.port, vids)))
    body = xmlrpc.client.dumps((SESSION, args.vms // 2), "one.vm.info").encode()
    step("one.vm.info one VM (hot)", spread(timed(oned.port, body, args.reads)[0]))
    step("one.vmpool.infoextended x20", listing(oned.port, "one.vmpool.infoextended"))
    step("one.vm.info sweep again", spread(sweep(oned.port, vids)))
    if args.trim:
        step("after malloc_trim(0)", trim(pid))


def trim(pid: int) -> str:
    """Have oned's glibc give the free pages of its heap back (malloc_trim(0), through gdb):
    what is left is what oned really holds, plus what fragmentation keeps."""
    done = subprocess.run(
        ["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if "$1 = 1" in done.stdout:
        return "trimmed"
    return f"gdb: {done.stdout[-200:]} {done.stderr[-200:]}"


def report(path: Path) -> None:
    data = json.loads(path.read_text())
    print(f"\nmemory report ({data['seconds']} s to write): objects reachable from the pools")
    for name, size in sorted(data["objects"].items(), key=lambda kv: -kv[1]):
        if size >= 100_000:
            print(f"  {name:<28} {size / 1e6:8.1f} MB")
    traced = data.get("traced")
    if traced:
        print(f"tracemalloc: {traced['total'] / 1e6:.1f} MB traced, by the file that allocated")
        for name, size in list(traced["by_file"].items())[:20]:
            print(f"  {name:<40} {size / 1e6:8.1f} MB")
        for site in traced["top"][:10]:
            print(f"  {site['bytes'] / 1e6:6.1f} MB in {site['count']} blocks:")
            print("      " + "\n      ".join(line.strip() for line in site["where"][-4:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=1_000, help="of them deployed")
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sweep", type=int, default=2_000, help="VMs read once each")
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--profile", type=Path, help="write oned's memory report there")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        help="glibc's MALLOC_MMAP_THRESHOLD_ for oned: blocks this big or more are mmapped and "
        "given back when freed (a fixed value also stops glibc from raising it)",
    )
    parser.add_argument("--trim", action="store_true", help="last, malloc_trim(0) in oned (gdb)")
    args = parser.parse_args()
    if args.mmap_threshold is not None:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)  # oned inherits it
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp:
        location = Path(tmp) / "one"
        oned = TracedOned(location, args.profile) if args.profile else OnedProcess(location)
        oned.set(DEBUG_LEVEL=1)
        oned.start(timeout=300)
        try:
            measure(oned, args)
        finally:
            oned.stop(timeout=600)
    if args.profile:
        report(args.profile)


if __name__ == "__main__":
    main()
