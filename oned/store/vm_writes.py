"""The VM writes a group commit merges (oned.commits, oned.transition_batch): ``Store.run`` takes
them with other writes and runs the VM inserts of a transaction as one statement per table, and
each run of consecutive VM updates likewise, so that a group of N VMs costs a few statements,
not 2-3 per VM (SQLAlchemy's Python work per statement was the largest part of a transition).
They run on the driver's cursor, compiled once (oned.store.fast_sql): SQLAlchemy's execution
machinery per statement cost more than the database's work for a group of a few allocations.

A ``VmUpdate`` is a compare-and-swap when it has ``expect``: its VM row is written only if the
stored (state, lcm_state) are those, and its history and leases only then. A merged run checks
the rows it changed in total; when one of them did not hold (a race: two deploys of one VM in a
group) the run is rolled back to a savepoint and every update of it is run alone, in order, so
each one's ``result`` is exact. That savepoint is always inside the group's transaction (on
SQLite too, whose driver begins one only before DML), so releasing it commits nothing yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.records import History, Lease
from oned.store import networks, rows
from oned.store.fast_sql import DriverCursor
from oned.store.schema import history, vm_pool

INSERT_VM = vm_pool.insert()
UPDATE_VM = vm_pool.update().where(vm_pool.c.oid == sa.bindparam("b_oid"))
UPDATE_VM_CAS = UPDATE_VM.where(
    vm_pool.c.state == sa.bindparam("b_state"),
    vm_pool.c.lcm_state == sa.bindparam("b_lcm_state"),
)
INSERT_HISTORY = history.insert()
UPDATE_HISTORY = history.update().where(
    history.c.vid == sa.bindparam("b_vid"), history.c.seq == sa.bindparam("b_seq")
)


@dataclass(frozen=True)
class VmInsert:
    """A VM's row, its history rows and the leases it takes: a write (Store.run) that merges
    with the other VM inserts of its group."""

    vm: dict[str, Any]
    history: list[dict[str, Any]]
    leases: Sequence[Lease]

    def __call__(self, conn: Connection) -> None:
        with DriverCursor(conn) as cursor:
            insert_vms(cursor, [self])


def insert_vms(cursor: DriverCursor, inserts: Sequence[VmInsert]) -> None:
    """One statement per table on the driver's cursor (oned.store.fast_sql): the hot path of
    one.vm.allocate."""
    cursor.executemany(INSERT_VM, [insert.vm for insert in inserts])
    records = [record for insert in inserts for record in insert.history]
    if records:
        cursor.executemany(INSERT_HISTORY, records)
    networks.take(cursor, [lease for insert in inserts for lease in insert.leases])


def run_writes(
    conn: Connection, cursor: DriverCursor, writes: Sequence[Callable[[Connection], object]]
) -> None:
    """Store.run's writes in its transaction: the VM inserts first, merged, then the others in
    order, each run of consecutive VM updates merged; VM writes on ``cursor``, the others are
    given ``conn``."""
    inserts = [write for write in writes if isinstance(write, VmInsert)]
    if inserts:
        insert_vms(cursor, inserts)
    updates: list[VmUpdate] = []
    for write in writes:
        if isinstance(write, VmUpdate):
            updates.append(write)
            continue
        if updates:
            update_vms(cursor, updates)
            updates = []
        if not isinstance(write, VmInsert):
            write(conn)
    if updates:
        update_vms(cursor, updates)


@dataclass(frozen=True)
class VmUpdate:
    """A VM row (a compare-and-swap when ``cas``), then, if it was written, its new history
    records (``inserted``), its changed ones (``updated``; ``upserted`` when nobody knew which),
    and the leases it gives back; ``result`` learns whether the row was written."""

    params: dict[str, Any]
    cas: bool
    inserted: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    upserted: Sequence[History]
    released: Sequence[Lease]
    result: Callable[[bool], object]

    def __call__(self, conn: Connection) -> None:
        with DriverCursor(conn) as cursor:
            self.run(cursor)

    def run(self, cursor: DriverCursor) -> None:
        statement = UPDATE_VM_CAS if self.cas else UPDATE_VM
        saved = cursor.executemany(statement, [self.params]) == 1
        if saved:
            _after([self], cursor)
        self.result(saved)


def vm_update(
    vm: Any,
    expect: tuple[int, int] | None,
    records: Sequence[History],
    released: Sequence[Lease],
    result: Callable[[bool], object],
    known: Sequence[History] | None,
) -> VmUpdate:
    """The write of ``Store.vm_update`` (see there)."""
    params = {"b_oid": vm.id, **rows.vm_params(vm)}
    if expect is not None:
        params["b_state"], params["b_lcm_state"] = expect
    if known is None:
        return VmUpdate(params, expect is not None, [], [], records, released, result)
    seqs = {record.seq for record in known}
    inserted = [rows.history_params(r) for r in records if r.seq not in seqs]
    updated = [_history_update(r) for r in records if r.seq in seqs]
    return VmUpdate(params, expect is not None, inserted, updated, (), released, result)


def update_vms(cursor: DriverCursor, updates: Sequence[VmUpdate]) -> None:
    """Consecutive updates of one group, merged when they can be (see the module)."""
    oids = {update.params["b_oid"] for update in updates}
    kinds = {update.cas for update in updates}
    if len(updates) < 2 or len(oids) < len(updates) or len(kinds) > 1:
        _one_by_one(cursor, updates)
        return
    if not cursor.dialect.supports_sane_multi_rowcount:
        _one_by_one(cursor, updates)
        return
    statement = UPDATE_VM_CAS if updates[0].cas else UPDATE_VM
    cursor.savepoint()
    if cursor.executemany(statement, [update.params for update in updates]) != len(updates):
        cursor.rollback_to_savepoint()
        _one_by_one(cursor, updates)
        return
    cursor.release_savepoint()
    _after(updates, cursor)
    for update in updates:
        update.result(True)


def _one_by_one(cursor: DriverCursor, updates: Sequence[VmUpdate]) -> None:
    for update in updates:
        update.run(cursor)


def _after(updates: Sequence[VmUpdate], cursor: DriverCursor) -> None:
    """The history and leases of updates whose rows were written."""
    inserted = [params for update in updates for params in update.inserted]
    if inserted:
        cursor.executemany(INSERT_HISTORY, inserted)
    updated = [params for update in updates for params in update.updated]
    if updated:
        cursor.executemany(UPDATE_HISTORY, updated)
    for update in updates:
        for record in update.upserted:
            upsert_history(cursor, record)
    networks.release(cursor, [lease for update in updates for lease in update.released])


def _history_update(record: History) -> dict[str, Any]:
    params = rows.history_params(record)
    changes = {key: value for key, value in params.items() if key not in ("vid", "seq")}
    return {"b_vid": record.vid, "b_seq": record.seq, **changes}


def upsert_history(cursor: DriverCursor, record: History) -> None:
    """UPDATE, then INSERT when no row matched: portable, and the single writer makes it safe.

    NOTE: MySQL counts matched rows here, not changed ones (SQLAlchemy sets CLIENT_FOUND_ROWS).
    """
    if cursor.executemany(UPDATE_HISTORY, [_history_update(record)]) == 0:
        cursor.executemany(INSERT_HISTORY, [rows.history_params(record)])
