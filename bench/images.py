"""Image repository benchmark (issue 13): allocating VMs with and without an IMAGE disk, and
``one.imagepool.info`` with 10,000 images against ``one.vmpool.info`` per byte.

Starts a real oned (SQLite, the shipped oned.conf.example) in a temporary ONE_LOCATION, as
bench/api.py does, with the same measuring rules (pre-encoded bodies, keep-alive connections,
server time to the reply's last byte). Allocation rates are measured A/B/A (plain DISK,
IMAGE disk, plain DISK again) so that the growth of the database does not favour either.

    .venv/bin/python bench/images.py [--vms 4000] [--images 10000] [--clients 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import SESSION, _post, create_network, machine, timed
from tests.functional.oned_process import OnedProcess

VM = """NAME = "bench-vm"
CPU = 0.5
MEMORY = 512
{disk}
DISK = [ TYPE = "swap", SIZE = "1024", TARGET = "hdb" ]
NIC = [ NETWORK = "public" ]
CONTEXT = [ HOSTNAME = "$NAME" ]
"""
PLAIN = 'DISK = [ SOURCE = "/srv/cloud/images/debian/disk.0", TARGET = "hda" ]'
IMAGE = 'DISK = [ IMAGE = "debian" ]'


def _calls(port: int, bodies: list[bytes], queue: multiprocessing.Queue) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port)
    _post(conn, xmlrpc.client.dumps((SESSION, -1), "one.user.info").encode())  # log in
    start = time.perf_counter()
    for body in bodies:
        reply = _post(conn, body)
        if b"<boolean>1</boolean>" not in reply[:200]:
            raise SystemExit(f"call failed: {reply[:300]!r}")
    queue.put((start, time.perf_counter(), len(bodies)))


def rate(port: int, bodies: list[bytes], clients: int) -> float:
    """Calls per second, ``bodies`` shared out among ``clients`` processes."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_calls, args=(port, bodies[i::clients], queue))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[2] for r in results) / (max(r[1] for r in results) - min(r[0] for r in results))


def vm_bodies(disk: str, count: int) -> list[bytes]:
    return [xmlrpc.client.dumps((SESSION, VM.format(disk=disk)), "one.vm.allocate").encode()] * (
        count
    )


def image_bodies(count: int) -> list[bytes]:
    return [
        xmlrpc.client.dumps(
            (SESSION, f'NAME = "img-{i}"\nTYPE = OS\nSOURCE = "/srv/cloud/images/img-{i}"'),
            "one.image.allocate",
        ).encode()
        for i in range(count)
    ]


def listing(port: int, method: str, params: tuple, what: str) -> tuple[float, int]:
    body = xmlrpc.client.dumps((SESSION, *params), method).encode()
    samples, size = timed(port, body, 20)
    p50 = statistics.median(samples)
    print(
        f"{method} ({what}, {size / 1e6:.1f} MB): server time to last byte p50 {p50:.1f} ms, "
        f"min {min(samples):.1f} ms, {p50 / (size / 1e6):.2f} ms/MB"
    )
    return p50, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=4000, help="VMs per A/B/A leg")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        oned = OnedProcess(Path(tmp) / "one")
        conf = oned.location / "etc" / "oned.conf"
        conf.write_text(re.sub(r"(?m)^DEBUG_LEVEL\s*=.*$", "DEBUG_LEVEL = 1", conf.read_text()))
        oned.start()
        try:
            print(f"machine: {machine()}")
            create_network(oned.port)
            server = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{oned.port}/RPC2")
            reply = server.one.image.allocate(
                SESSION, 'NAME = debian\nSOURCE = "/srv/cloud/images/debian/disk.0"'
            )
            assert reply[0], reply
            legs = [
                ("DISK SOURCE", PLAIN),
                ("DISK IMAGE", IMAGE),
                ("DISK SOURCE", PLAIN),
            ]
            rates = []
            for label, disk in legs:
                rates.append(rate(oned.port, vm_bodies(disk, args.vms), args.clients))
                print(f"one.vm.allocate, {label}: {rates[-1]:.0f}/s from {args.clients} clients")
            plain = (rates[0] + rates[2]) / 2
            print(f"IMAGE disk vs SOURCE disk: {rates[1] / plain:.1%} of the rate")
            made = rate(oned.port, image_bodies(args.images), args.clients)
            print(f"one.image.allocate (SOURCE, READY at once): {made:.0f}/s")
            vm_ms, vm_size = listing(
                oned.port, "one.vmpool.info", (-2, -1, -1, -1), f"{3 * args.vms} VMs"
            )
            img_ms, img_size = listing(
                oned.port, "one.imagepool.info", (-2, -1, -1), f"{args.images + 1} images"
            )
            per_vm = vm_ms / vm_size
            print(f"imagepool per byte vs vmpool per byte: {(img_ms / img_size) / per_vm:.2f}x")
        finally:
            oned.stop()


if __name__ == "__main__":
    main()
