"""Scale benchmark (issue 18, goals 1 and 4): 100,000 VMs on 10,000 hosts in one oned, on SQLite
and on PostgreSQL: start-up time and RSS, the host monitoring cycle and the VM polling round.

The state is written in bulk through the store's own row builders (SQLAlchemy Core executemany,
as bench/history.py does; 100,000 allocations and deploys through the API would take minutes on
SQLite and far longer on PostgreSQL): oneadmin, ``--hosts`` dummy hosts (MONITORED, last
monitored long ago, so all are due at oned's first tick) and ``--vms`` VMs (bench/api.py's VM:
two DISKs, a NIC, GRAPHICS, FEATURES, CONTEXT), the first ``--running`` RUNNING round robin on
the hosts with one open history record each, the others PENDING. A real oned (the shipped
oned.conf.example, DEBUG_LEVEL 2 for its monitoring lines, dummy drivers) is started on it:

- start-up: process start until ``one.vm.info`` answers (the pools loaded), and RSS then;
- the first host monitoring cycle of every host (oned logs "Monitoring cycle: N hosts in X s");
- the first VM polling round: the RUNNING VMs spread over VM_POLLING_INTERVAL (60 s), never two
  POLLs of one VM in flight (oned/poll_schedule.py); the time until the store holds a LAST_POLL
  of this run for all of them (the answers of a reactor turn are one transaction,
  oned/poll_writes.py; the dummy's first answer always changes the figures), and the POLL
  timeouts and other polling errors in oned.log meanwhile;
- with ``--steady S``, S seconds more after that round: oned's CPU seconds per second and RSS
  while the VMs are polled again (answers that change nothing write nothing);
- ``one.vmpool.info`` of every VM, ``one.vm.info`` p50/p99, oned's CPU seconds and RSS.

PostgreSQL: the test server at 127.0.0.1:5432 (trust auth), a scratch database created and
dropped as bench/chaos.py does; SQLite: a file on the temporary directory's disk.

    .venv/bin/python bench/scale.py [--vms 100000] [--running 100000] [--hosts 10000]
                                    [--backend sqlite postgresql] [--watch 180] [--steady 0]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import socket
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import machine, percentile, timed
from bench.chaos import postgresql
from bench.history import batches, start, vm_template
from oned import auth
from oned.records import History, Host, HostShare, User, Vm
from oned.states import HostState, LcmState, VmState
from oned.store import Store, rows
from oned.store.engine import create_engine
from oned.store.schema import history, host_pool, user_pool, vm_pool
from tests.functional.oned_process import OnedProcess
from tests.store.targets import Db

SESSION = "oneadmin:onecloud"
CYCLE = re.compile(r"Monitoring cycle: (\d+) hosts in ([\d.]+) s \((\d+) failed\)")
LONG_AGO = 1_700_000_000  # hosts last monitored, VMs last polled: all due at the first tick


def host(hid: int, vm_mad: str = "vmm_dummy") -> Host:
    """A dummy host of 8 cores and 64 GB, as im_dummy reports."""
    share = HostShare(max_cpu=800, max_mem=64 * 1024 * 1024, max_disk=1024 * 1024,
                      free_cpu=800, free_mem=64 * 1024 * 1024, free_disk=1024 * 1024)  # fmt: skip
    return Host(hid, f"host{hid:05d}", "im_dummy", vm_mad, "tm_dummy",
                state=HostState.MONITORED, prev_state=HostState.MONITORED,
                last_mon_time=LONG_AGO, share=share)  # fmt: skip


def vm(vid: int, running: int, hosts: int, vm_mad: str = "vmm_dummy") -> Vm:
    """VM ``vid``: RUNNING on host vid % hosts when vid < running, else PENDING."""
    made = Vm(vid, 0, f"bench-{vid}", vm_template(vid), stime=LONG_AGO)
    if vid < running:
        hid = vid % hosts
        made.state, made.lcm_state = VmState.ACTIVE, LcmState.RUNNING
        made.deploy_id, made.last_poll = f"one-{vid}", LONG_AGO
        made.history = [
            History(vid, 0, f"host{hid:05d}", hid, f"/var/lib/one/{vid}", vm_mad,
                    "tm_dummy", LONG_AGO, 0, LONG_AGO, LONG_AGO + 5, LONG_AGO + 5)
        ]  # fmt: skip
    return made


def build(
    db: Db, db_file: str, vms: int, running: int, hosts: int, vm_mad: str = "vmm_dummy"
) -> float:
    """Write the whole state in bulk (hosts and VMs on the VMM driver ``vm_mad``); seconds it
    took. tests/functional/test_vm_polling.py builds its cloud with it too."""
    Store.open(db, db_file, logging.getLogger("bench")).close()  # migrated to head
    engine = create_engine(db, db_file)
    started = time.monotonic()
    admin = User(0, "oneadmin", auth.hash_password("onecloud"))
    with engine.begin() as conn:
        if db.backend == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(user_pool.insert(), {"oid": 0, **rows.user_params(admin)})
        made_hosts = [{"oid": h, **rows.host_params(host(h, vm_mad))} for h in range(hosts)]
        conn.execute(host_pool.insert(), made_hosts)
    for part in batches(0, vms):
        made = [vm(v, running, hosts, vm_mad) for v in part]
        with engine.begin() as conn:
            conn.execute(vm_pool.insert(), [{"oid": m.id, **rows.vm_params(m)} for m in made])
            records = [rows.history_params(r) for m in made for r in m.history]
            if records:
                conn.execute(history.insert(), records)
    engine.dispose()
    return time.monotonic() - started


def polled(db: Db, db_file: str, since: int) -> int:
    """How many VMs the store holds with a LAST_POLL at or after ``since``."""
    engine = create_engine(db, db_file)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(vm_pool.c.last_poll >= since)
            return int(conn.execute(query).scalar() or 0)
    finally:
        engine.dispose()


def status(pid: int) -> tuple[float, float]:
    """oned's VmRSS in MB and its CPU seconds (user + system) so far."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS"))  # fmt: skip
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss / 1024, (int(fields[11]) + int(fields[12])) / 100  # utime, stime in ticks


def watch(oned: OnedProcess, db: Db, db_file: str, args: argparse.Namespace, since: int) -> None:
    """The first monitoring cycle of every host and the first polling round of every RUNNING
    VM, printed as they complete, for at most ``--watch`` seconds; then ``--steady``."""
    pid = oned.proc.pid  # type: ignore[union-attr]
    began, cycle_seen, last, shown = time.monotonic(), False, -1, 0.0
    while time.monotonic() - began < args.watch:
        time.sleep(2)
        now = time.monotonic() - began
        log = oned.log
        cycles = [m for m in CYCLE.finditer(log) if int(m[1]) == args.hosts]
        if cycles and not cycle_seen:
            cycle_seen = True
            print(f"  first monitoring cycle of {args.hosts:,} hosts: {cycles[0][2]} s "
                  f"({cycles[0][3]} failed), seen at +{now:.0f} s", flush=True)  # fmt: skip
        count = polled(db, db_file, since)
        rss, cpu = status(pid)
        done = count >= args.running
        if count != last and (now - shown >= 10 or done):
            print(f"  +{now:5.0f} s: {count:,} of {args.running:,} VMs polled, RSS {rss:.0f} MB, "
                  f"oned CPU {cpu:.0f} s, {errors(log)}", flush=True)  # fmt: skip
            last, shown = count, now
        if cycle_seen and done:
            steady(oned, args.steady)
            return
    print(f"  watch ended after {args.watch:.0f} s; {errors(oned.log)}", flush=True)


def errors(log: str) -> str:
    """POLL timeouts and other polling errors in oned.log so far."""
    timeouts = len(re.findall(r"POLL \d+: no answer from", log))
    others = log.count("Error monitoring VM") - timeouts
    return f"{timeouts:,} POLL timeouts, {others:,} other polling errors"


def steady(oned: OnedProcess, seconds: float) -> None:
    """oned's CPU per second and RSS over ``seconds`` after the first round, every 30 s."""
    pid = oned.proc.pid  # type: ignore[union-attr]
    began = then = time.monotonic()
    cpu = status(pid)[1]
    while then - began < seconds:
        time.sleep(min(30.0, seconds - (then - began)))
        (rss, now_cpu), now = status(pid), time.monotonic()
        print(f"  steady +{now - began:4.0f} s: oned CPU {(now_cpu - cpu) / (now - then):.2f} "
              f"s/s, RSS {rss:.0f} MB, {errors(oned.log)}", flush=True)  # fmt: skip
        cpu, then = now_cpu, now


def listing(port: int, repeat: int) -> tuple[list[float], int]:
    """``one.vmpool.info`` of every VM: milliseconds to the last byte, and the reply's size
    (bench/api.py's ``timed`` reads into 64 MB: 100,000 summaries are about 150 MB)."""
    body = xmlrpc.client.dumps((SESSION, -2, -1, -1, -1), "one.vmpool.info").encode()
    message = b"POST /RPC2 HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\n"
    message += b"Content-Length: %d\r\n\r\n" % len(body) + body
    samples, size = [], 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(repeat + 1):
            begin = time.perf_counter()
            sock.sendall(message)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            header, _, got = head.partition(b"\r\n\r\n")
            size = int(re.search(rb"(?i)content-length:\s*(\d+)", header)[1])  # type: ignore[index]
            reply = bytearray(size)
            reply[: len(got)] = got
            view, filled = memoryview(reply), len(got)
            while filled < size:
                filled += sock.recv_into(view[filled:])
            samples.append((time.perf_counter() - begin) * 1000)
    return samples[1:], size


def reads(oned: OnedProcess, vms: int) -> None:
    pid = oned.proc.pid  # type: ignore[union-attr]
    samples, size = listing(oned.port, 5)
    print(f"  one.vmpool.info of {vms:,} VMs ({size / 1e6:.0f} MB): p50 "
          f"{percentile(samples, 0.5):.0f} ms, min {min(samples):.0f} ms", flush=True)  # fmt: skip
    body = xmlrpc.client.dumps((SESSION, vms // 2), "one.vm.info").encode()
    samples, _ = timed(oned.port, body, 2000)
    print(f"  one.vm.info: p50 {percentile(samples, 0.5):.3f} ms, p99 "
          f"{percentile(samples, 0.99):.3f} ms", flush=True)  # fmt: skip
    rss, cpu = status(pid)
    print(f"  after the reads: RSS {rss:.0f} MB, oned CPU {cpu:.0f} s", flush=True)


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[tuple[Db, str, str]]:
    """(store settings, sqlite file, oned.conf DB value) of an empty database."""
    if backend == "sqlite":
        path = tmp / "one" / "var" / "one.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield Db("sqlite"), str(path), ""
        return
    with postgresql() as value:
        name = re.search(r'DB_NAME = "(\w+)"', value)[1]  # type: ignore[index]
        yield Db("postgresql", "127.0.0.1", 5432, "postgres", "", name), "", value


def run(backend: str, args: argparse.Namespace) -> None:
    print(f"\n{backend}: {args.vms:,} VMs ({args.running:,} RUNNING) on {args.hosts:,} hosts",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp, database(backend, Path(tmp)) as (
        db, db_file, conf_db,
    ):  # fmt: skip
        took = build(db, db_file, args.vms, args.running, args.hosts)
        print(f"  state written in {took:.0f} s", flush=True)
        oned = OnedProcess(Path(tmp) / "one")
        oned.set(DEBUG_LEVEL=2, **({"DB": conf_db} if conf_db else {}))
        since = int(time.time())
        try:
            for n in range(args.starts):
                if n:
                    oned.stop(timeout=300)
                up = start(oned)
                rss, cpu = status(oned.proc.pid)  # type: ignore[union-attr]
                loaded = re.findall(r"Loaded .*", oned.log)[-1]
                print(f"  start {n + 1}: one.vm.info answers after {up:.2f} s; RSS {rss:.0f} MB,"
                      f" CPU {cpu:.1f} s ({loaded})", flush=True)  # fmt: skip
                if not n:
                    watch(oned, db, db_file, args, since)
                    reads(oned, args.vms)
        finally:
            oned.stop(timeout=300)


def baseline(starts: int) -> None:
    """Starts on an empty SQLite database: what a start costs on this machine at this load
    without any state (the interpreter, imports, drivers), to read the figures against."""
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        oned = OnedProcess(Path(tmp) / "one")
        oned.set(DEBUG_LEVEL=2)
        figures = []
        for _ in range(starts + 1):  # the first creates the schema and oneadmin
            took = start(oned)
            rss, _cpu = status(oned.proc.pid)  # type: ignore[union-attr]
            figures.append(f"{took:.2f} s ({rss:.0f} MB)")
            oned.stop(timeout=60)
    print(f"empty database, starts until one.vm.info answers: {', '.join(figures[1:])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--running", type=int, default=100_000, help="of them RUNNING")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"],
                        choices=("sqlite", "postgresql"))  # fmt: skip
    parser.add_argument("--starts", type=int, default=2, help="starts on the same state")
    parser.add_argument("--watch", type=float, default=180, help="seconds of monitoring")
    parser.add_argument("--steady", type=float, default=0,
                        help="seconds to watch after the first polling round")  # fmt: skip
    args = parser.parse_args()
    print(f"machine: {machine()}")
    baseline(args.starts)
    for backend in args.backend:
        run(backend, args)


if __name__ == "__main__":
    main()
