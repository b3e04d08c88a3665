"""Store throughput on one backend (not collected by pytest).

    .venv/bin/python bench/store.py [sqlite|postgresql|mysql] [--vms 100000]

PostgreSQL and MySQL use a scratch database ``onecloud_bench_<random>``, dropped at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oned.records import History, Host, HostShare, Vm
from oned.states import LcmState, VmState
from oned.store import Store
from oned.template import Template
from tests.store.targets import Db, scratch_database


def vm_template(vid: int) -> Template:
    return Template(
        [
            ("NAME", f"vm-{vid}"),
            ("CPU", "1"),
            ("MEMORY", "1024"),
            ("DISK", {"SOURCE": "/srv/images/ttylinux.img", "TARGET": "hda", "READONLY": "no"}),
            ("NIC", {"NETWORK": "public", "IP": "10.0.0.5", "MAC": "02:00:0a:00:00:05"}),
            ("GRAPHICS", {"TYPE": "vnc", "LISTEN": "0.0.0.0", "PORT": str(5900 + vid)}),
            ("OS", {"KERNEL": "/vmlinuz", "INITRD": "/initrd.img", "ROOT": "sda1"}),
            ("REQUIREMENTS", 'HYPERVISOR = "kvm"'),
            ("VMID", str(vid)),
        ]
    )


def host(hid: int, now: int) -> Host:
    template = Template(
        [
            ("HYPERVISOR", "kvm"),
            ("TOTALCPU", "800"),
            ("CPUSPEED", "2400"),
            ("TOTALMEMORY", "16777216"),
            ("USEDMEMORY", str(now % 1000)),
            ("FREEMEMORY", "8388608"),
            ("FREECPU", "650"),
            ("USEDCPU", "150"),
            ("NETRX", str(now)),
            ("NETTX", str(now)),
            ("HOSTNAME", f"host{hid}.example.org"),
            ("ARCH", "x86_64"),
            ("MODELNAME", "Intel(R) Xeon(R) CPU"),
        ]
    )
    share = HostShare(max_cpu=800, max_mem=16777216, free_cpu=650, used_cpu=now % 100)
    return Host(
        hid, f"host{hid}", "im_kvm", "vmm_kvm", "tm_ssh", 2, 1, now, "default", share, template
    )


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<48} {count:>8} in {seconds:7.3f} s = {count / seconds:10,.0f}/s")


def bench(store: Store, vms: int) -> None:
    start = time.perf_counter()
    for vid in range(2000):
        store.insert_vm(Vm(vid, 0, f"vm-{vid}", vm_template(vid)))
    rate("insert_vm, one transaction each", 2000, time.perf_counter() - start)

    start = time.perf_counter()
    for vid in range(2000):
        vm = Vm(vid, 0, f"vm-{vid}", vm_template(vid), state=VmState.ACTIVE)
        vm.history = [History(vid, 0, "host1", 1, f"/var/{vid}", "vmm_kvm", "tm_ssh", stime=1)]
        store.update_vm(vm, expect=(VmState.PENDING, LcmState.LCM_INIT), history=vm.history)
    rate("update_vm CAS + open history, one txn each", 2000, time.perf_counter() - start)

    hosts = [host(hid, 1) for hid in range(1000)]
    for one in hosts:
        store.insert_host(one)
    for round_ in range(3):
        batch = [host(hid, 100 + round_) for hid in range(1000)]
        start = time.perf_counter()
        store.update_hosts(batch)
        print(f"update_hosts of 1,000 hosts{'':<22} {time.perf_counter() - start:7.3f} s")

    fill(store, 2000, vms)
    start = time.perf_counter()
    loaded = store.load_vms()
    print(
        f"load_vms of {len(loaded):,} VMs with history{'':<16} {time.perf_counter() - start:7.3f} s"
    )


def fill(store: Store, first: int, total: int) -> None:
    """Bulk rows straight through Core: the setup, not what is measured."""
    from oned.store import rows, schema

    conn = store._conn
    for at in range(first, total, 5000):
        batch = range(at, min(total, at + 5000))
        with conn.begin():
            conn.execute(
                schema.vm_pool.insert(),
                [
                    {"oid": vid, **rows.vm_params(Vm(vid, 0, f"vm-{vid}", vm_template(vid), 3, 3))}
                    for vid in batch
                ],
            )
            conn.execute(
                schema.history.insert(),
                [
                    rows.history_params(History(vid, 0, "host1", 1, "/var/x", "vmm_kvm", "tm_ssh"))
                    for vid in batch
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", nargs="?", default="sqlite")
    parser.add_argument("--vms", type=int, default=100_000)
    args = parser.parse_args()
    log = logging.getLogger("bench")
    if args.backend == "sqlite":
        with (
            tempfile.TemporaryDirectory() as tmp,
            Store.open(Db("sqlite"), f"{tmp}/one.db", log) as s,
        ):
            bench(s, args.vms)
        return
    databases = scratch_database(args.backend, "onecloud_bench")
    try:
        with Store.open(next(databases), "", log) as store:
            bench(store, args.vms)
    finally:
        databases.close()


if __name__ == "__main__":
    main()
