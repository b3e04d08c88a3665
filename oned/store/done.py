"""DONE VMs in the store (issue 18): the oldest of them, in batches, and their removal.

DONE VMs accumulate without bound and never change again, so nothing here walks them all: a
batch is an index range of ix_vm_pool_state_etime (revision 0006), the oldest first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.states import VmState
from oned.store.errors import StoreError
from oned.store.schema import history, pool_control, vm_pool

DONE = int(VmState.DONE)

_ENDED_BEFORE = (vm_pool.c.state == DONE) & (vm_pool.c.etime < sa.bindparam("b_before"))
_OLDEST = sa.select(vm_pool.c.oid).where(_ENDED_BEFORE).order_by(vm_pool.c.etime, vm_pool.c.oid)
_COUNT = sa.select(sa.func.count()).select_from(vm_pool).where(_ENDED_BEFORE)
_DELETE_HISTORY = history.delete().where(history.c.vid.in_(sa.bindparam("b_oids", expanding=True)))
_DELETE_VMS = vm_pool.delete().where(
    vm_pool.c.oid.in_(sa.bindparam("b_oids", expanding=True)), vm_pool.c.state == DONE
)
_COUNT_VM_OID = (
    pool_control.update()
    .where(pool_control.c.tablename == vm_pool.name)
    .where(pool_control.c.last_oid < sa.bindparam("b_oid"))
    .values(last_oid=sa.bindparam("b_oid"))
)


def count_before(conn: Connection, before: int) -> int:
    """How many DONE VMs ended before ``before`` (epoch seconds)."""
    return int(conn.execute(_COUNT, {"b_before": before}).scalar_one())


def oldest_before(conn: Connection, before: int, limit: int) -> list[int]:
    """Ids of at most ``limit`` DONE VMs that ended before ``before``, the oldest first."""
    return list(conn.execute(_OLDEST.limit(limit), {"b_before": before}).scalars())


def delete(conn: Connection, vids: list[int]) -> int:
    """Remove the VMs ``vids``, all DONE, and their history; the number of VMs removed.

    A VM among them that is not DONE (or not there) raises StoreError, and the caller's
    transaction then rolls back: nothing is removed. pool_control is raised to the highest id
    removed, so that no id is ever handed out again (Store.next_oids reads it with max(oid)).
    """
    if not vids:
        return 0
    removed = conn.execute(_DELETE_VMS, {"b_oids": vids}).rowcount
    if removed != len(vids):
        raise StoreError(f"{len(vids) - removed} of VMs {vids[0]}..{vids[-1]} are not DONE")
    conn.execute(_DELETE_HISTORY, {"b_oids": vids})
    conn.execute(_COUNT_VM_OID, {"b_oid": max(vids)})
    return int(removed)
