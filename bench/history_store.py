"""History at scale in the store alone, on any backend (issue 18): pages, counts and the purge
of DONE VMs, without oned (bench/history.py measures a real oned on SQLite).

    .venv/bin/python bench/history_store.py [sqlite|postgresql|mysql] [--done 100000]

PostgreSQL and MySQL use a scratch database (tests/store/targets.py), dropped at the end;
SQLite a temporary file. The DONE VMs are bench/history.py's, written in bulk.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.history import BATCH, NOW, YEAR, done_vm
from oned.store import Store, rows
from oned.store.engine import create_engine
from oned.store.schema import history, vm_pool
from tests.store.targets import Db, scratch_database


def fill(db: Db, db_file: str, done: int) -> None:
    Store.open(db, db_file, logging.getLogger("bench")).close()
    engine = create_engine(db, db_file)
    started = time.monotonic()
    for at in range(0, done, BATCH):
        vms = [done_vm(vid, done) for vid in range(at, min(at + BATCH, done))]
        with engine.begin() as conn:
            conn.execute(vm_pool.insert(), [{"oid": vm.id, **rows.vm_params(vm)} for vm in vms])
            conn.execute(history.insert(), [rows.history_params(vm.history[0]) for vm in vms])
    if db.backend != "sqlite":  # as autovacuum or InnoDB's persistent statistics would
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE TABLE vm_pool" if db.backend == "mysql" else "ANALYZE")
    engine.dispose()
    print(f"{done:,} DONE VMs written in {time.monotonic() - started:.0f} s")


def timed(label: str, work: Callable[[], object]) -> None:
    started = time.perf_counter()
    work()
    print(f"  {label:<44} {(time.perf_counter() - started) * 1000:9.1f} ms")


def bench(store: Store, done: int) -> None:
    half = NOW - YEAR // 2
    timed("DONE page of 100 at half (offset)", lambda: store.list_vm_ids(
        state=6, include_done=True, offset=done // 2, limit=100))  # fmt: skip
    timed("any-state page of 100 at the end (offset)", lambda: store.list_vm_ids(
        include_done=True, offset=done - 100, limit=100))  # fmt: skip
    timed("id range of 100", lambda: store.list_vm_ids(
        include_done=True, start=done // 2, end=done // 2 + 99))  # fmt: skip
    timed("dry run: count of the older half", lambda: store.count_done(half))
    timed("load_vms (start-up; no live VMs)", store.load_vms)
    timed("next_oids (start-up)", store.next_oids)
    timed("get_vm of a DONE VM", lambda: store.get_vm(done // 3))
    timed(f"purge_done of {min(20_000, done // 2):,} (batches of 500)",
          lambda: store.purge_done(half, limit=min(20_000, done // 2)))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", nargs="?", default="sqlite",
                        choices=("sqlite", "postgresql", "mysql"))  # fmt: skip
    parser.add_argument("--done", type=int, default=100_000)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.backend == "sqlite":
            db, db_file = (
                Db("sqlite"),
                str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "one.db"),
            )
        else:
            databases = scratch_database(args.backend)
            db, db_file = next(databases), ""
            stack.callback(databases.close)
        fill(db, db_file, args.done)
        store = Store.open(db, db_file, logging.getLogger("bench"))
        stack.callback(store.close)
        print(f"{args.backend}, {args.done:,} DONE VMs:")
        bench(store, args.done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
