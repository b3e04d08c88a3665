"""API benchmark: 10,000 VM allocations from 4 concurrent clients, then listings and single reads.

Starts a real oned (SQLite, the shipped oned.conf.example) in a temporary ONE_LOCATION, and
measures as reference/performance.md §6 asks: request bodies pre-encoded, persistent HTTP/1.1
connections, server-side figures read as raw bytes (time to last byte, no XML-RPC decoding).

    .venv/bin/python bench/api.py [--vms 10000] [--clients 4] [--reads 2000] [--floor]
                             [--info-under-load]

Besides the wall-clock figures, oned's own CPU time per call (/proc/PID/stat): on a loaded
machine the rate moves with the load, the CPU per call much less.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import platform
import re
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.oned_process import OnedProcess

SESSION = "oneadmin:onecloud"
TEMPLATE = """NAME = "bench-vm"
CPU = 0.5
VCPU = 1
MEMORY = 512
DISK = [ SOURCE = "/srv/cloud/images/debian/disk.0", TARGET = "hda", READONLY = "no" ]
DISK = [ TYPE = "swap", SIZE = "1024", TARGET = "hdb" ]
NIC = [ NETWORK = "public" ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "0.0.0.0" ]
FEATURES = [ ACPI = "yes" ]
CONTEXT = [ HOSTNAME = "$NAME", FILES = "/srv/cloud/ctx/init.sh" ]
"""


def _post(conn: http.client.HTTPConnection, body: bytes) -> bytes:
    conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
    return conn.getresponse().read()


ALLOCATE = xmlrpc.client.dumps((SESSION, TEMPLATE), "one.vm.allocate").encode()
# the floor under every call: HTTP, XML-RPC, the session check, a constant reply
TRIVIAL = xmlrpc.client.dumps((SESSION,), "one.system.version").encode()


def _allocator(port: int, count: int, queue: multiprocessing.Queue, body: bytes = ALLOCATE) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    _post(conn, body)  # authenticate once, outside the clock
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count - 1):
        reply = _post(conn, body)
        if b"<boolean>1</boolean>" not in reply[:200]:
            raise SystemExit(f"call failed: {reply[:300]!r}")
    queue.put((start, time.perf_counter(), count - 1, time.process_time() - cpu))


def create_network(port: int) -> None:
    """The RANGED network "public" the benchmark VM's NIC leases from (class B: 65,534)."""
    template = "NAME = public\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\n"
    template += "NETWORK_SIZE = B"
    reply = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2").one.vn.allocate(
        SESSION, template
    )
    if not reply[0]:
        raise SystemExit(f"one.vn.allocate failed: {reply[1]}")


class Run(NamedTuple):
    rate: float  # calls per second over the clients' common span
    client_cpu: float  # seconds of the clients' own CPU (http.client) per call


def allocate(port: int, vms: int, clients: int) -> float:
    return run_clients(port, vms, clients, ALLOCATE).rate


def run_clients(port: int, calls: int, clients: int, body: bytes) -> Run:
    """``calls`` calls of ``body`` from ``clients`` processes at once."""
    procs, queue = start_allocators(port, calls, clients, body)
    return finish_allocators(procs, queue)


def start_allocators(
    port: int, vms: int, clients: int, body: bytes = ALLOCATE
) -> tuple[list[multiprocessing.Process], multiprocessing.Queue]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_allocator, args=(port, vms // clients, queue, body))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    return procs, queue


def finish_allocators(procs: list[multiprocessing.Process], queue: multiprocessing.Queue) -> Run:
    """Calls per second over the clients' common span, once they all ended."""
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    begin = min(r[0] for r in results)
    end = max(r[1] for r in results)
    calls = sum(r[2] for r in results)
    return Run(calls / (end - begin), sum(r[3] for r in results) / calls)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process used so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def info_while_allocating(
    port: int, vms: int, clients: int, oned_pid: int
) -> tuple[list[float], float, dict[str, float]]:
    """one.vm.info round trips (ms, server time to last byte) from one more client while
    ``clients`` allocate ``vms`` VMs; the allocation rate; and the share of the phase the
    reader and oned's reactor thread spent runnable but waiting for a core."""
    body = xmlrpc.client.dumps((SESSION, 0), "one.vm.info").encode()
    threads = {"the reader": Path("/proc/thread-self/schedstat"),
               "oned's reactor": Path(f"/proc/{oned_pid}/task/{oned_pid}/schedstat")}  # fmt: skip
    waited = {who: run_queue_wait(path) for who, path in threads.items()}
    began = time.monotonic()
    procs, queue = start_allocators(port, vms, clients)
    samples: list[float] = []
    while any(p.is_alive() for p in procs) and queue.qsize() < len(procs):
        more, _ = timed(port, body, 50)
        samples += more
    span = time.monotonic() - began
    waits = {who: (run_queue_wait(path) - waited[who]) / span for who, path in threads.items()}
    return samples, finish_allocators(procs, queue).rate, waits


def run_queue_wait(schedstat: Path) -> float:
    """Seconds a thread has spent runnable, waiting for a core (schedstat's second field)."""
    return int(schedstat.read_text().split()[1]) / 1e9


def timed(port: int, body: bytes, repeat: int) -> tuple[list[float], int]:
    """Milliseconds from request sent to the reply's last byte, over a raw keep-alive socket
    (no HTTP or XML-RPC decoding on the client: this is the server's time)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = b"POST /RPC2 HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\n"
    message = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    buf = bytearray(64 * 1024 * 1024)
    view = memoryview(buf)
    samples, size = [], 0
    for _ in range(repeat + 1):
        start = time.perf_counter()
        sock.sendall(message)
        got = sock.recv_into(buf)
        header_end = buf.find(b"\r\n\r\n")
        length = int(_header(bytes(buf[:header_end]), b"content-length"))
        if header_end + 4 + length > len(buf):  # a listing over 64 MB: a bigger buffer
            bigger = bytearray(header_end + 4 + length)
            bigger[:got] = view[:got]
            view.release()
            buf, view = bigger, memoryview(bigger)
        while got < header_end + 4 + length:
            more = sock.recv_into(view[got:])
            if not more:
                raise SystemExit(f"oned closed the connection after {got} bytes of a reply")
            got += more
        samples.append((time.perf_counter() - start) * 1000)
        size = length
    sock.close()
    return samples[1:], size


def _header(head: bytes, name: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    raise ValueError(f"no {name!r} header in reply")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{os.cpu_count()} x {cpu}, {int(mem) // 1024 // 1024} GiB RAM, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.platform()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="first --vms one.system.version calls from --clients clients: the rate and oned's "
        "CPU of the cheapest authenticated call, the floor under one.vm.allocate's",
    )
    parser.add_argument(
        "--info-under-load",
        action="store_true",
        help="then one.vm.info from a fifth client while 4 clients allocate --vms more",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        oned = OnedProcess(Path(tmp) / "one")
        conf = oned.location / "etc" / "oned.conf"
        conf.write_text(re.sub(r"(?m)^DEBUG_LEVEL\s*=.*$", "DEBUG_LEVEL = 1", conf.read_text()))
        oned.start()
        try:
            print(f"machine: {machine()}")
            create_network(oned.port)
            if args.floor:
                cpu = cpu_seconds(oned.proc.pid)
                floor = run_clients(oned.port, args.vms, args.clients, TRIVIAL)
                cpu = cpu_seconds(oned.proc.pid) - cpu
                print(
                    f"one.system.version: {floor.rate:.0f}/s from {args.clients} clients; "
                    f"oned's CPU {cpu / args.vms * 1e6:.0f} us per call, the clients' "
                    f"{floor.client_cpu * 1e6:.0f} us"
                )
            cpu = cpu_seconds(oned.proc.pid)
            rate, client_cpu = run_clients(oned.port, args.vms, args.clients, ALLOCATE)
            cpu = cpu_seconds(oned.proc.pid) - cpu
            print(
                f"one.vm.allocate: {rate:.0f}/s from {args.clients} clients "
                f"({args.vms} VMs, each acknowledged after its commit); oned's CPU "
                f"{cpu / args.vms * 1e6:.0f} us per allocation, the clients' "
                f"{client_cpu * 1e6:.0f} us"
            )
            if args.info_under_load:
                samples, rate, waits = info_while_allocating(
                    oned.port, args.vms, args.clients, oned.proc.pid
                )
                print(
                    f"one.vm.info while {args.clients} clients allocate ({rate:.0f}/s): "
                    f"p50 {percentile(samples, 0.5):.3f} ms, p99 {percentile(samples, 0.99):.3f} "
                    f"ms ({len(samples)} calls); waiting for a core meanwhile: "
                    + ", ".join(f"{who} {100 * share:.0f} %" for who, share in waits.items())
                    + " of the time"
                )
            total = args.vms * (2 if args.info_under_load else 1)
            for method in ("one.vmpool.info", "one.vmpool.infoextended"):
                body = xmlrpc.client.dumps((SESSION, -2, -1, -1, -1), method).encode()
                timed(oned.port, body, 0)  # renders the summaries not cached yet
                cpu = cpu_seconds(oned.proc.pid)
                samples, size = timed(oned.port, body, 20)
                cpu = cpu_seconds(oned.proc.pid) - cpu
                print(
                    f"{method} ({total} VMs, {size / 1e6:.1f} MB): server time to last byte "
                    f"p50 {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms; "
                    f"oned's CPU {cpu / 21 * 1e3:.1f} ms per call"
                )
            info = xmlrpc.client.dumps((SESSION, total // 2), "one.vm.info").encode()
            samples, size = timed(oned.port, info, args.reads)
            print(
                f"one.vm.info ({size} bytes): p50 {percentile(samples, 0.5):.3f} ms, "
                f"p95 {percentile(samples, 0.95):.3f} ms, p99 {percentile(samples, 0.99):.3f} ms"
            )
            rss = next(
                line
                for line in Path(f"/proc/{oned.proc.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS")
            )
            print(f"oned {rss.split(':')[1].strip()} RSS with {total} VMs")
        finally:
            oned.stop()


if __name__ == "__main__":
    main()
