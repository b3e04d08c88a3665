"""Lease benchmark: a RANGED network of 65,000 addresses, take and give back at any fill level.

    .venv/bin/python bench/vnet.py [--size 65000] [--rounds 1000]

Server side, in process, on the store (SQLite, WAL, synchronous NORMAL) and pools oned uses,
without XML-RPC: "take" is ``one.vm.allocate`` of a VM with one NIC on the network (choose the
lease, insert the VM and its lease in one transaction, record it), "give back" is
``release_leases`` (one transaction, then memory). Both are measured with no address, half of
them and all but one of them in use (the filler leases are real rows, held by one VM, frozen
out of the garbage collector's way as oned freezes what it loads), next to an allocation
without NIC and the in-memory LeaseBook alone. Then a restart loads it all.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oned import vnet as vn
from oned.api import vms, vnets
from oned.api.cloud import Caller, Cloud
from oned.bootstrap import load_pools
from oned.config import Config
from oned.pools import Pools
from oned.records import Lease, Vm
from oned.store import Store
from oned.template import Template

ADMIN = Caller(0, "oneadmin")
NIC_VM = 'NAME = "bench"\nMEMORY = 64\nNIC = [ NETWORK = "bench" ]'
PLAIN_VM = 'NAME = "bench"\nMEMORY = 64'
FILLER = 10_000_000  # the id of the VM that holds the filler leases


Sample = tuple[float, float]  # milliseconds: wall clock, CPU of this process


def measured(action: Callable[[], object]) -> tuple[Sample, object]:
    """``action()``'s wall and CPU time, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000), result


def timed(action: Callable[[], object], rounds: int) -> list[Sample]:
    return [measured(action)[0] for _ in range(rounds)]


def summary(samples: list[Sample]) -> str:
    """Wall-clock p50/p95 (what a client waits; includes other processes on the cores and
    SQLite's checkpoints) and CPU p50/p95 (what the work itself costs)."""
    wall, cpu = sorted(s[0] for s in samples), sorted(s[1] for s in samples)
    at95 = int(len(samples) * 0.95)
    return (
        f"wall p50 {statistics.median(wall):.3f} ms, p95 {wall[at95]:.3f} ms; "
        f"CPU p50 {statistics.median(cpu):.3f} ms, p95 {cpu[at95]:.3f} ms"
    )


def fill(cloud: Cloud, nid: int, in_use: int) -> None:
    """Hold leases until ``in_use`` addresses are used, in one transaction (one filler VM)."""
    net, book = cloud.pools.vnets.get(nid), cloud.pools.books[nid]
    assert net is not None
    prefix = cloud.pools.mac_prefix
    wanted = [ip for ip in vn.addresses(net) if book.is_free(ip)][: in_use - book.used]
    if not wanted:
        return
    leases = [Lease(nid, ip, vn.lease_mac(prefix, ip), FILLER) for ip in wanted]
    filler = Vm(FILLER + book.used, 0, "filler", Template([("MEMORY", "1")]))
    for lease in leases:
        lease.vid = filler.id
    cloud.store.insert_vm(filler, leases)  # type: ignore[attr-defined]
    cloud.pools.vms.put(filler)
    cloud.pools.hold_leases(leases)
    gc.collect()
    gc.freeze()  # as oned does once it has loaded its pools


def take_and_give_back(cloud: Cloud, rounds: int) -> tuple[list[Sample], list[Sample]]:
    takes, gives = [], []
    for _ in range(rounds):
        took, vid = measured(lambda: vms.allocate(cloud, ADMIN, NIC_VM))
        vm = cloud.pools.vms.get(vid)  # type: ignore[arg-type]
        gave, _ = measured(lambda vm=vm: vnets.release_leases(cloud, vm))  # type: ignore[misc]
        takes.append(took)
        gives.append(gave)
    return takes, gives


def book_alone(book: vn.LeaseBook, rounds: int) -> list[Sample]:
    def cycle() -> None:
        ip = book.pick()
        assert ip is not None
        book.take(ip)
        book.give_back(ip)

    return timed(cycle, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=65_000)
    parser.add_argument("--rounds", type=int, default=1_000)
    args = parser.parse_args()
    log = logging.getLogger("bench")
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        db_file = str(Path(tmp) / "one.db")
        store = Store.open(config.db, db_file, log)  # type: ignore[arg-type]
        cloud = Cloud(Pools(vn.parse_mac_prefix(config.mac_prefix)), store, config, log)
        head = "NAME=bench\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=10.0.0.0\n"
        nid = vnets.allocate(cloud, ADMIN, f"{head}NETWORK_SIZE={args.size}")
        print(f"network: RANGED, {args.size} addresses; {args.rounds} rounds per line; SQLite")
        plain = timed(lambda: vms.allocate(cloud, ADMIN, PLAIN_VM), args.rounds)
        print(f"  one.vm.allocate without NIC (baseline): {summary(plain)}")
        for in_use in (0, args.size // 2, args.size - 1):
            fill(cloud, nid, in_use)
            takes, gives = take_and_give_back(cloud, args.rounds)
            alone = book_alone(cloud.pools.books[nid], args.rounds)
            print(f"{in_use} addresses in use:")
            print(f"  take (one.vm.allocate with the NIC): {summary(takes)}")
            print(f"  give back (release_leases):          {summary(gives)}")
            print(f"  LeaseBook pick+take+give_back alone: {summary(alone)}")
        store.close()
        start = time.perf_counter()
        with Store.open(config.db, db_file, log) as again:  # type: ignore[arg-type]
            pools = load_pools(again, log, config.mac_prefix)
        print(
            f"restart: load_pools with {pools.books[nid].used} leases and {len(pools.vms)} VMs "
            f"in {time.perf_counter() - start:.2f} s"
        )


if __name__ == "__main__":
    main()
