"""History at scale (issue 18, goal 2): what a million DONE VMs cost a running oned.

Builds a SQLite database of ``--done`` DONE VMs (each with its closed history record, ended over
the past year, oldest first) followed by ``--active`` PENDING VMs, written in bulk through the
store's own row builders (SQLAlchemy Core executemany in batches, not the API: a million
allocations would take an hour). The database is kept in ``--cache`` and copied for each run,
so a second run starts at once. Then a real oned (the shipped oned.conf.example, DEBUG_LEVEL 1)
is started on it and measured: start-up (process start until ``one.vm.info`` answers), RSS,
``one.vmpool.info`` of the VMs not DONE and pages of DONE ones, ``one.vm.info`` of an active and
of a DONE VM, then ``onedb purge-done``'s calls for the older half of the DONE VMs while
``one.vm.info`` is timed; and the same with no DONE VMs, side by side.

    .venv/bin/python bench/history.py [--done 1000000] [--active 10000] [--reads 2000]
                                      [--cache ~/.cache/onecloud/history]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import percentile, timed
from cli.onedb import PER_CALL
from oned import auth
from oned.client import OneClient
from oned.records import History, User, Vm
from oned.states import HistoryReason, LcmState, VmState
from oned.store import Store, rows
from oned.store.engine import create_engine
from oned.store.schema import history, user_pool, vm_pool
from oned.template import Template
from tests.functional.oned_process import OnedProcess
from tests.store.targets import Db

SESSION = "oneadmin:onecloud"
BATCH = 10_000
YEAR = 365 * 86_400
NOW = 1_790_000_000  # a fixed "now" (2026-09), so that a cached database means the same


def vm_template(vid: int) -> Template:
    """About the benchmark VM of bench/api.py (420 bytes of template)."""
    return Template.trusted(
        [
            ("NAME", f"bench-{vid}"),
            ("CPU", "0.5"),
            ("VCPU", "1"),
            ("MEMORY", "512"),
            ("DISK", {"SOURCE": "/srv/cloud/images/debian/disk.0", "TARGET": "hda"}),
            ("DISK", {"TYPE": "swap", "SIZE": "1024", "TARGET": "hdb"}),
            ("NIC", {"NETWORK": "public", "IP": "10.0.0.5", "MAC": "02:00:0a:00:00:05"}),
            ("GRAPHICS", {"TYPE": "vnc", "LISTEN": "0.0.0.0", "PORT": str(5900 + vid % 60000)}),
            ("FEATURES", {"ACPI": "yes"}),
            ("CONTEXT", {"HOSTNAME": f"bench-{vid}", "FILES": "/srv/cloud/ctx/init.sh"}),
            ("VMID", str(vid)),
        ]
    )


def done_vm(vid: int, done: int) -> Vm:
    """DONE VM ``vid`` of ``done``: ended ``done - vid`` steps before NOW, over one year."""
    etime = NOW - (done - vid) * YEAR // max(done, 1)
    stime = etime - 3600
    vm = Vm(vid, 0, f"bench-{vid}", vm_template(vid), state=VmState.DONE)
    vm.prev_state, vm.prev_lcm_state = VmState.ACTIVE, LcmState.RUNNING
    vm.stime, vm.etime, vm.last_poll = stime, etime, etime - 60
    vm.history = [
        History(vid, 0, f"host{vid % 100:02d}", vid % 100, f"/var/lib/one/{vid}", "vmm_dummy",
                "tm_dummy", stime, etime, stime, stime + 5, stime + 5, etime - 5, etime - 5,
                etime, HistoryReason.USER)
    ]  # fmt: skip
    return vm


def batches(first: int, last: int) -> Iterator[range]:
    for at in range(first, last, BATCH):
        yield range(at, min(at + BATCH, last))


def build(path: Path, done: int, active: int) -> None:
    """The database: oneadmin, ``done`` DONE VMs (ids 0..done-1), then ``active`` PENDING."""
    db = Db("sqlite")
    Store.open(db, str(path), logging.getLogger("bench")).close()  # migrated to head
    engine = create_engine(db, str(path))
    started = time.monotonic()
    admin = User(0, "oneadmin", auth.hash_password("onecloud"))
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(user_pool.insert(), {"oid": 0, **rows.user_params(admin)})
    for part in batches(0, done + active):
        vms = [done_vm(v, done) if v < done else Vm(v, 0, f"bench-{v}", vm_template(v), stime=NOW)
               for v in part]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(vm_pool.insert(), [{"oid": vm.id, **rows.vm_params(vm)} for vm in vms])
            records = [rows.history_params(r) for vm in vms for r in vm.history]
            if records:
                conn.execute(history.insert(), records)
        if part.stop % 100_000 == 0:
            print(f"  {part.stop:,} VMs written in {time.monotonic() - started:.0f} s", flush=True)
    engine.dispose()
    took, size = time.monotonic() - started, path.stat().st_size / 1e6
    print(f"built {path} ({done:,} DONE + {active:,} PENDING) in {took:.0f} s, {size:.0f} MB")


def prepared(cache: Path, done: int, active: int) -> Path:
    """The cached database for these counts, built first when there is none."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"history-{done}-{active}.db"
    if not path.exists():
        part = path.with_suffix(".part")
        part.unlink(missing_ok=True)
        build(part, done, active)
        part.rename(path)
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(oned: OnedProcess, timeout: float = 600) -> float:
    """Seconds from the process start until one.vm.info answers."""
    started = time.monotonic()
    oned.start(timeout=timeout)
    proxy = xmlrpc.client.ServerProxy(oned.endpoint)
    while time.monotonic() - started < timeout:
        try:
            proxy.one.vm.info(SESSION, 0)  # any answer: oned serves
            return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"oned did not answer within {timeout:.0f} s")


def reads(port: int, vids: list[int], count: int) -> list[float]:
    """one.vm.info of ``vids`` in turn, ``count`` times in all: milliseconds each."""
    samples: list[float] = []
    per = max(1, count // len(vids))
    for vid in vids:
        body = xmlrpc.client.dumps((SESSION, vid), "one.vm.info").encode()
        samples += timed(port, body, per)[0]
    return samples


def listing(port: int, params: tuple, repeat: int = 10) -> str:
    body = xmlrpc.client.dumps((SESSION, *params), "one.vmpool.info").encode()
    samples, size = timed(port, body, repeat)
    ordered = sorted(samples)
    return f"p50 {ordered[len(ordered) // 2]:.1f} ms ({size / 1e6:.2f} MB)"


def measure(db: Path, done: int, active: int, n_reads: int) -> dict[str, str]:
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="history-") as tmp:
        oned = OnedProcess(Path(tmp) / "one")
        conf = oned.location / "etc" / "oned.conf"
        conf.write_text(re.sub(r"(?m)^DEBUG_LEVEL\s*=.*$", "DEBUG_LEVEL = 1", conf.read_text()))
        copy(db, oned.location / "var" / "one.db")
        try:
            figures["start-up"] = f"{start(oned):.2f} s"
            assert oned.proc is not None
            figures["RSS after start"] = f"{rss_mb(oned.proc.pid):.0f} MB"
            figures.update(listings(oned.port, done))
            rng = random.Random(18)
            actives = [done + rng.randrange(active) for _ in range(10)]
            figures["vm.info active"] = spread(reads(oned.port, actives, n_reads))
            if done:
                dones = [rng.randrange(done) for _ in range(10)]
                figures["vm.info DONE"] = spread(reads(oned.port, dones, n_reads))
            figures["RSS after the reads"] = f"{rss_mb(oned.proc.pid):.0f} MB"
            if done:
                figures.update(purge_while_reading(oned, actives[0]))
        finally:
            oned.stop(timeout=60)
    return figures


def copy(source: Path, target: Path) -> None:
    """A copy on disk before oned starts: the kernel writing back hundreds of MB of dirty
    pages would otherwise share the measurements' time."""
    shutil.copyfile(source, target)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())


def listings(port: int, done: int) -> dict[str, str]:
    figures = {"vmpool.info -2 not DONE": listing(port, (-2, -1, -1, -1))}
    if done:
        half = done // 2
        figures["vmpool.info DONE page 100 first"] = listing(port, (-2, 0, -100, 6))
        figures["vmpool.info DONE page 100 at half"] = listing(port, (-2, half, -100, 6))
        figures["vmpool.info any page 100 at end"] = listing(port, (-2, done, -100, -2))
        figures["vmpool.info any id range 100"] = listing(port, (-2, half, half + 99, -2))
    return figures


def spread(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5):.3f} ms, p99 {percentile(samples, 0.99):.3f} ms"


def purge_while_reading(oned: OnedProcess, vid: int) -> dict[str, str]:
    """onedb purge-done's calls for the older half of the DONE VMs (ended over half a year
    before NOW), while this thread reads one.vm.info of an active VM."""
    outcome: dict[str, float] = {}

    def purge() -> None:
        client = OneClient(oned.endpoint, SESSION, timeout=600)
        started = time.monotonic()
        total, purged = 0, PER_CALL
        while purged == PER_CALL:
            purged = client.call("one.vmpool.purgedone", NOW - YEAR // 2, False, PER_CALL)
            total += purged
        outcome.update(took=time.monotonic() - started, purged=total)

    worker = threading.Thread(target=purge)
    worker.start()
    body = xmlrpc.client.dumps((SESSION, vid), "one.vm.info").encode()
    samples: list[float] = []
    while worker.is_alive():
        samples += timed(oned.port, body, 50)[0]
    worker.join()
    rate = outcome["purged"] / outcome["took"]
    return {
        "purge-done of the older half": (
            f"{outcome['purged']:,.0f} VMs in {outcome['took']:.1f} s ({rate:,.0f}/s)"
        ),
        "vm.info active during the purge": spread(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--done", type=int, default=1_000_000, help="DONE VMs (default 1,000,000)")
    parser.add_argument("--active", type=int, default=10_000, help="PENDING VMs (default 10,000)")
    parser.add_argument("--reads", type=int, default=2_000, help="one.vm.info calls per kind")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/onecloud/history",
                        help="where the prepared databases are kept between runs")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="both measurements, N times")
    args = parser.parse_args(argv)
    for round_ in range(1, args.rounds + 1):
        results = {}
        for done in (0, args.done):
            db = prepared(args.cache, done, args.active)
            results[done] = measure(db, done, args.active, args.reads)
        print(f"\nround {round_}: none -> {args.done:,} DONE (and {args.active:,} active VMs)")
        for name in {**results[0], **results[args.done]}:
            print(f"  {name:<36} {results[0].get(name, '-'):<36} {results[args.done][name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
