"""Virtual networks and their leases in SQL: the statements ``Store`` runs inside its transactions.

The leases table holds the leases in use, one row each (oid, ip, MAC, vid, used = 1). Taking a
lease is one INSERT: the database itself refuses to give an address to two VMs, as the primary
key (oid, ip) collides and the whole transaction rolls back. Giving it back is one DELETE.

NOTE: OpenNebula also stores the free leases of a FIXED network (used = 0, vid = -1). Here its
template is the definition of its leases (oned.vnet.build writes each MAC into it), so both
types store the same way and a FIXED network's free leases are rebuilt from it at load.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.records import Lease, Vnet
from oned.store import rows
from oned.store.fast_sql import DriverCursor
from oned.store.schema import leases, network_pool
from oned.vnet import FIXED, fixed_leases

_INSERT_VNET = network_pool.insert()
_UPDATE_VNET = network_pool.update().where(network_pool.c.oid == sa.bindparam("b_oid"))
_DELETE_VNET = network_pool.delete().where(network_pool.c.oid == sa.bindparam("b_oid"))
_SELECT_VNETS = sa.select(*rows.VNET_COLUMNS).order_by(network_pool.c.oid)
_SELECT_LEASES = sa.select(*rows.LEASE_COLUMNS)
_INSERT_LEASE = leases.insert()
_DELETE_LEASES_OF = leases.delete().where(leases.c.oid == sa.bindparam("b_oid"))
_DELETE_LEASE = leases.delete().where(
    leases.c.oid == sa.bindparam("b_oid"),
    leases.c.ip == sa.bindparam("b_ip"),
    leases.c.vid == sa.bindparam("b_vid"),
)


def load(conn: Connection) -> list[Vnet]:
    """Every network in id order with its leases: those in use from their rows, and the free
    ones of FIXED networks from their templates."""
    nets = [rows.vnet_from(row) for row in conn.execute(_SELECT_VNETS)]
    by_id = {net.id: net for net in nets}
    for net in nets:
        if net.type == FIXED:
            net.leases = fixed_leases(net)
    for row in conn.execute(_SELECT_LEASES):
        lease = rows.lease_from(row)
        net = by_id.get(lease.vnet)
        if net is not None:
            net.leases[lease.ip] = lease
    return nets


def insert(conn: Connection, net: Vnet) -> None:
    """The network row; leases in use (none for a new network) are not its to write."""
    conn.execute(_INSERT_VNET, {"oid": net.id, **rows.vnet_params(net)})


def update(conn: Connection, net: Vnet) -> sa.CursorResult:
    """The network row (not its leases)."""
    return conn.execute(_UPDATE_VNET, {"b_oid": net.id, **rows.vnet_params(net)})


def delete(conn: Connection, nid: int) -> None:
    conn.execute(_DELETE_LEASES_OF, {"b_oid": nid})
    conn.execute(_DELETE_VNET, {"b_oid": nid})


def take(cursor: DriverCursor, taken: Sequence[Lease]) -> None:
    """A row for each lease, held by its ``vid``; one in use already raises IntegrityError.
    On the driver's cursor: part of one.vm.allocate's hot path (oned.store.fast_sql)."""
    if taken:
        cursor.executemany(_INSERT_LEASE, [rows.lease_params(lease) for lease in taken])


def release(cursor: DriverCursor, released: Sequence[Lease]) -> None:
    """Give back leases held by their ``vid``; a lease that ``vid`` does not hold (any more)
    is left alone. On the driver's cursor, as ``take``."""
    keys = [{"b_oid": lease.vnet, "b_ip": lease.ip, "b_vid": lease.vid} for lease in released]
    if keys:
        cursor.executemany(_DELETE_LEASE, keys)
