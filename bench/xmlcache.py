"""The full-XML cache alone (issue 18, oned/xmlcache.py): bytes held and the cost of a read, in
process, for --vms VMs shaped like bench/api.py's (a NIC with its lease, two DISKs, one history
record), against the plain dict the pools used before and against rendering on demand.

    .venv/bin/python bench/xmlcache.py [--vms 20000] [--budget 4194304]

Every figure is the best of --repeat rounds, the rounds of each way alternated, so a loaded
machine moves them together (compare ratios within one run).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import TEMPLATE
from oned import views
from oned.records import History, Vm
from oned.rpc.marshal import escape_bytes
from oned.template import parse
from oned.xmlcache import DEFAULT_BUDGET, XmlCache


def bench_vm(vid: int) -> Vm:
    tmpl = parse(TEMPLATE)
    tmpl.set("VMID", str(vid))
    tmpl.remove("NIC")
    ip = 0x0A000000 + vid + 1
    nic = {"NETWORK": "public", "NETWORK_ID": "0", "BRIDGE": "br0",
           "IP": f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}",
           "MAC": f"02:00:0a:{ip >> 16 & 255:02x}:{ip >> 8 & 255:02x}:{ip & 255:02x}"}  # fmt: skip
    tmpl.add("NIC", nic)
    start = 1_764_650_000 + vid
    vm = Vm(vid, 0, "bench-vm", tmpl, state=3, lcm_state=3, stime=start)
    vm.history.append(History(vid, 0, f"dummy{vid % 20:03d}", vid % 20, f"/var/lib/one/{vid}",
                              "vmm_dummy", "tm_dummy", stime=start, pstime=start,
                              petime=start + 1, rstime=start + 1))  # fmt: skip
    return vm


def render(vm: Vm) -> bytes:
    return escape_bytes(views.vm_xml(vm, "oneadmin"))


def held(build: Callable[[], object]) -> tuple[object, int]:
    """What ``build`` returns and the bytes it still holds (tracemalloc)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return built, after - before


def fill(fragments: list[bytes], budget: int | None) -> XmlCache:
    cache = XmlCache(budget)
    for vid, data in enumerate(fragments):
        cache.put(vid, data)
    return cache


def best(rounds: list[list[float]]) -> float:
    return min(sum(r) / len(r) for r in rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    vms = [bench_vm(vid) for vid in range(args.vms)]
    fragments = [render(vm) for vm in vms]
    raw = sum(map(len, fragments))
    print(f"{args.vms} VMs, full XML {raw / args.vms:.0f} bytes each escaped, {raw / 1e6:.1f} MB")
    plain, plain_bytes = held(lambda: dict(enumerate(bytes(bytearray(f)) for f in fragments)))
    cache, cache_bytes = held(lambda: fill([bytes(bytearray(f)) for f in fragments], args.budget))
    assert isinstance(cache, XmlCache)
    print(f"held: dict {plain_bytes / 1e6:.1f} MB, XmlCache({args.budget}) "
          f"{cache_bytes / 1e6:.1f} MB {cache.sizes()}")  # fmt: skip
    del plain
    ways: dict[str, Callable[[int], object]] = {
        "render on demand": lambda vid: render(vms[vid]),
        "XmlCache, cold (inflate)": lambda vid: cache._inflate(cache._cold[vid]),
        "XmlCache, hot": lambda vid: cache._hot.get(vid),
        "deflate (once, leaving hot)": lambda vid: cache._deflate(fragments[vid]),
    }
    sample = range(0, args.vms, max(1, args.vms // 2000))
    cold = [vid for vid in sample if vid in cache._cold]
    rounds: dict[str, list[list[float]]] = {name: [] for name in ways}
    for _ in range(args.repeat):
        for name, way in ways.items():
            took = []
            for vid in cold:
                t = time.perf_counter()
                way(vid)
                took.append(time.perf_counter() - t)
            rounds[name].append(took)
    for name in ways:
        print(f"{name:<30} {best(rounds[name]):8.1f} us per VM")
    for label, scan in (("listing every VM (infoextended)", cache.get),):
        t = time.perf_counter()
        for vid in range(args.vms):
            scan(vid)
        print(f"{label}: {(time.perf_counter() - t) * 1000:.0f} ms through XmlCache.get")


if __name__ == "__main__":
    main()
