"""VM reads: the live VMs at start, any VM by id, and the ids a listing pages through.

DONE VMs accumulate without bound: no query here walks them unless it is asked for them, and
then through an index (ix_vm_pool_state, in id order) and only as far as the page goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.records import History, Vm
from oned.states import VmState
from oned.store import rows
from oned.store.schema import history, vm_pool

# Every state but DONE spelled out, rather than ``state <> DONE``, so that the planners can use
# ix_vm_pool_state and never walk the DONE VMs, which accumulate without bound.
NOT_DONE = vm_pool.c.state.in_(sorted(int(s) for s in VmState if s != VmState.DONE))
CHUNK = 500  # ids per IN (...) list
_SEQ = attrgetter("seq")

# No ORDER BY on these two: sorting in Python leaves the planner free to walk the state index.
_SELECT_LIVE_VMS = sa.select(*rows.VM_COLUMNS).where(NOT_DONE)
_SELECT_LIVE_HISTORY = (
    sa.select(*rows.HISTORY_COLUMNS)
    .select_from(vm_pool.join(history, history.c.vid == vm_pool.c.oid))
    .where(NOT_DONE)
)
_SELECT_VMS = (
    sa.select(*rows.VM_COLUMNS)
    .where(vm_pool.c.oid.in_(sa.bindparam("b_oids", expanding=True)))
    .order_by(vm_pool.c.oid)
)
_SELECT_HISTORIES = sa.select(*rows.HISTORY_COLUMNS).where(
    history.c.vid.in_(sa.bindparam("b_oids", expanding=True))
)


def load_live(conn: Connection) -> list[Vm]:
    """Every VM not DONE, in id order, each with its whole history ordered by seq."""
    vm_rows = list(conn.execute(_SELECT_LIVE_VMS).all())
    records = _group_history(conn.execute(_SELECT_LIVE_HISTORY))
    vm_rows.sort(key=_first)
    return [rows.vm_from(row, records.pop(row[0], [])) for row in vm_rows]


def get(conn: Connection, vids: Iterable[int]) -> list[Vm]:
    """The VMs among ``vids`` that exist (DONE included), in id order, with history."""
    wanted = sorted(set(vids))
    found: list[Vm] = []
    for at in range(0, len(wanted), CHUNK):
        chunk = {"b_oids": wanted[at : at + CHUNK]}
        vm_rows = conn.execute(_SELECT_VMS, chunk).all()
        records = _group_history(conn.execute(_SELECT_HISTORIES, chunk))
        found += [rows.vm_from(row, records.pop(row[0], [])) for row in vm_rows]
    return found


def list_ids(
    conn: Connection,
    *,
    uid: int | None = None,
    state: int | None = None,
    include_done: bool = False,
    start: int = -1,
    end: int = -1,
    limit: int | None = None,
    offset: int = 0,
) -> list[int]:
    """VM ids in order, filtered by owner and state, within ``start..end`` (both inclusive;
    a negative bound is no bound), at most ``limit`` of them after skipping ``offset``.

    ``state`` None means any state, DONE only with ``include_done``; an explicit state,
    DONE included, is always honoured.
    """
    column = vm_pool.c
    query = sa.select(column.oid).order_by(column.oid)
    if uid is not None:
        query = query.where(column.uid == uid)
    if state is not None:
        query = query.where(column.state == state)
    elif not include_done:
        query = query.where(NOT_DONE)
    if start >= 0:
        query = query.where(column.oid >= start)
    if end >= 0:
        query = query.where(column.oid <= end)
    if limit is not None:
        query = query.limit(limit)
    if offset > 0:
        query = query.offset(offset)
    return list(conn.execute(query).scalars())


def _first(row: Sequence[Any]) -> Any:
    return row[0]


def _group_history(result: Iterable[Sequence[Any]]) -> dict[int, list[History]]:
    """History rows in any order as lists per vid, each ordered by seq."""
    grouped: dict[int, list[History]] = {}
    unordered: list[list[History]] = []
    for row in result:
        record = rows.history_from(row)
        records = grouped.get(record.vid)
        if records is None:
            grouped[record.vid] = [record]
        else:
            if record.seq < records[-1].seq:
                unordered.append(records)
            records.append(record)
    for records in unordered:
        records.sort(key=_SEQ)
    return grouped
