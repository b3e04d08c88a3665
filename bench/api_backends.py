"""The API figures of issue 18's goal 3 on SQLite and on PostgreSQL, side by side in one run.

For each backend and each ``--vms`` size, a fresh real oned (the shipped oned.conf.example,
DEBUG_LEVEL 1) on an empty database, measured as bench/api.py measures (pre-encoded bodies,
keep-alive connections, the server's time to last byte):

- ``one.vm.allocate`` from 4 clients, each acknowledged after its commit: the rate, and the CPU
  per allocation of oned, of the database server (PostgreSQL's processes) and of the clients;
- ``one.vmpool.info`` of every VM, 20 times: p50 and min;
- ``one.vm.info`` of one VM 2,000 times, idle: p50, p99;
- ``one.vm.info`` again while 4 clients allocate ``--during`` more VMs: p50, p99.

PostgreSQL: the test server at 127.0.0.1:5432, a scratch database created and dropped as
bench/chaos.py does. ``--pg-set NAME=VALUE`` (repeatable) applies
``ALTER DATABASE <scratch> SET NAME = VALUE`` first, e.g. ``synchronous_commit=off``: a per-
database setting, the server itself is not changed.

    .venv/bin/python bench/api_backends.py [--vms 10000 20000] [--backend sqlite postgresql]
                                           [--pg-set synchronous_commit=off]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import threading
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import (
    ALLOCATE,
    SESSION,
    allocate,
    cpu_seconds,
    create_network,
    machine,
    percentile,
    run_clients,
    timed,
)
from bench.chaos import postgresql
from oned.store.engine import create_engine
from tests.functional.oned_process import OnedProcess
from tests.store.targets import Db

SETTING = re.compile(r"^(\w+)=([\w.]+)$")


@contextlib.contextmanager
def database(backend: str, settings: list[str]) -> Iterator[str]:
    """oned.conf's DB value for an empty database ("" for SQLite's default file)."""
    if backend == "sqlite":
        yield ""
        return
    with postgresql() as value:
        name = re.search(r'DB_NAME = "(\w+)"', value)[1]  # type: ignore[index]
        engine = create_engine(Db("postgresql", "127.0.0.1", 5432, "postgres", "", "test"), "")
        with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            for setting in settings:
                key, val = SETTING.match(setting).groups()  # type: ignore[union-attr]
                conn.execute(sa.text(f"ALTER DATABASE {name} SET {key} = '{val}'"))
        engine.dispose()
        yield value


def server_cpu(backend: str) -> float:
    """CPU seconds used so far by the database server's processes (PostgreSQL's postmaster and
    backends, found by name: the test server is this machine's only one); 0 for SQLite."""
    if backend == "sqlite":
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            if stat.read_text().split(" (", 1)[1].startswith("postgres)"):
                total += cpu_seconds(int(stat.parent.name))
    return total


def reads_while_allocating(port: int, vid: int, during: int, clients: int) -> str:
    """one.vm.info of ``vid`` over and over while ``clients`` allocate ``during`` VMs."""
    body = xmlrpc.client.dumps((SESSION, vid), "one.vm.info").encode()
    samples: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            samples.extend(timed(port, body, 200)[0])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        rate = allocate(port, during, clients)
    finally:
        stop.set()
        reader.join()
    return (
        f"p50 {percentile(samples, 0.5):.3f} ms, p99 {percentile(samples, 0.99):.3f} ms "
        f"({len(samples)} reads while allocating at {rate:.0f}/s)"
    )


def measure(backend: str, vms: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="api-") as tmp, database(backend, args.pg_set) as db:
        oned = OnedProcess(Path(tmp) / "one")
        oned.set(DEBUG_LEVEL=1, **({"DB": db} if db else {}))
        oned.start(timeout=120)
        try:
            create_network(oned.port)
            before = {"oned": cpu_seconds(oned.proc.pid), "server": server_cpu(backend)}
            run = run_clients(oned.port, vms, args.clients, ALLOCATE)
            used = {"oned": cpu_seconds(oned.proc.pid), "server": server_cpu(backend)}
            cost = ", ".join(
                f"{who} {(used[who] - before[who]) / vms * 1e6:.0f} us"
                for who in ("oned", "server")
                if backend != "sqlite" or who == "oned"
            )
            print(
                f"  one.vm.allocate, {args.clients} clients: {run.rate:.0f}/s; CPU per "
                f"allocation: {cost}, the clients {run.client_cpu * 1e6:.0f} us",
                flush=True,
            )
            body = xmlrpc.client.dumps((SESSION, -2, -1, -1, -1), "one.vmpool.info").encode()
            samples, size = timed(oned.port, body, 20)
            print(f"  one.vmpool.info ({size / 1e6:.1f} MB): p50 {statistics.median(samples):.1f}"
                  f" ms, min {min(samples):.1f} ms", flush=True)  # fmt: skip
            info = xmlrpc.client.dumps((SESSION, vms // 2), "one.vm.info").encode()
            samples, _ = timed(oned.port, info, args.reads)
            print(f"  one.vm.info idle: p50 {percentile(samples, 0.5):.3f} ms, p99 "
                  f"{percentile(samples, 0.99):.3f} ms", flush=True)  # fmt: skip
            during = reads_while_allocating(oned.port, vms // 2, args.during, args.clients)
            print(f"  one.vm.info during allocations: {during}", flush=True)
        finally:
            oned.stop(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"],
                        choices=("sqlite", "postgresql"))  # fmt: skip
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--during", type=int, default=4_000, help="VMs allocated while reading")
    parser.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    for setting in args.pg_set:
        if not SETTING.match(setting):
            parser.error(f"--pg-set {setting!r}: expected NAME=VALUE (letters, digits, _ .)")
    print(f"machine: {machine()}")
    for vms in args.vms:
        for backend in args.backend:
            extra = f", {' '.join(args.pg_set)}" if backend != "sqlite" and args.pg_set else ""
            print(f"\n{backend}{extra}: {vms:,} VMs", flush=True)
            measure(backend, vms, args)


if __name__ == "__main__":
    main()
