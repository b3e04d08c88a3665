"""The hot statements on the driver's cursor (oned.store.fast_sql) on every backend: a group of
VM inserts commits outside SQLAlchemy's transaction machinery and still fails as the store
always did (StoreError, nothing written, the connection usable or reconnected afterwards)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from oned.store import Store, StoreError
from oned.store.fast_sql import DriverCursor, compiled, driver_transaction
from oned.store.schema import leases
from oned.store.vm_writes import INSERT_VM
from tests.store.test_networks import a_vm, held, lease, loaded, ranged
from tests.store.test_records import _kill_connection

pytestmark = pytest.mark.db


def test_an_insert_only_group_commits_its_vms_and_leases(store: Store) -> None:
    net = ranged()
    store.insert_network(net)
    store.run([store.vm_insert(a_vm(vid), [lease(net, f"10.0.0.{vid}", vid)]) for vid in (1, 2)])
    assert [vm.name for vm in store.load_vms()] == ["vm-1", "vm-2"]
    assert held(loaded(store)[net.id]) == {"10.0.0.1": 1, "10.0.0.2": 2}


def test_a_lease_in_use_fails_the_whole_group_and_the_store_goes_on(store: Store) -> None:
    """The second VM asks for the first one's address: StoreError, neither VM is written, and
    the next transaction on the same connection commits."""
    net = ranged()
    store.insert_network(net)
    group = [store.vm_insert(a_vm(vid), [lease(net, "10.0.0.7", vid)]) for vid in (1, 2)]
    with pytest.raises(StoreError, match=r"leases|UNIQUE|unique|Duplicate"):
        store.run(group)
    assert store.list_vm_ids() == [] and held(loaded(store)[net.id]) == {}
    store.run(group[:1])
    assert store.list_vm_ids() == [1]


def test_an_exception_inside_rolls_back_and_is_raised_as_it_is(store: Store) -> None:
    conn = store._conn
    with pytest.raises(KeyError), driver_transaction(conn) as cursor:
        cursor.executemany(INSERT_VM, [store.vm_insert(a_vm(1)).vm])
        raise KeyError("after the insert")
    assert store.list_vm_ids() == []


def test_inserts_mixed_with_other_writes_share_their_transaction(store: Store) -> None:
    """A group with another write runs in SQLAlchemy's transaction, the inserts on its cursor:
    the other write failing takes the inserts with it."""

    def fails(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT no_such_column FROM vm_pool"))

    with pytest.raises(StoreError):
        store.run([store.vm_insert(a_vm(1)), fails])
    assert store.list_vm_ids() == []
    store.run([store.vm_insert(a_vm(1)), lambda conn: None])
    assert store.list_vm_ids() == [1]


def test_a_boolean_goes_through_its_column_type(store: Store) -> None:
    """``used`` has a bind processor on every backend (True as 1 where there is no BOOLEAN)."""
    net = ranged()
    store.insert_network(net)
    with driver_transaction(store._conn) as cursor:
        assert cursor.executemany(leases.insert(), [_lease_row(net.id, 5)]) == 1
    used = store._conn.execute(sa.select(leases.c.used)).scalar_one()
    store._conn.rollback()
    assert used is True or used == 1


def test_a_statement_is_compiled_once_per_dialect_and_shape(store: Store) -> None:
    dialect = store._conn.dialect
    keys = tuple(_lease_row(0, 1))
    assert compiled(leases.insert(), keys, dialect) is not compiled(leases.insert(), keys, dialect)
    statement = leases.insert()
    assert compiled(statement, keys, dialect) is compiled(statement, keys, dialect)


def test_a_dropped_server_connection_fails_one_group_and_the_next_reconnects(
    store: Store, target
) -> None:
    """A server restart costs the allocations in flight a StoreError, not the daemon."""
    if target.backend == "sqlite":
        pytest.skip("sqlite has no server connection to lose")
    store.insert_vm(a_vm(0))
    _kill_connection(store, target.backend)
    with pytest.raises(StoreError):
        store.run([store.vm_insert(a_vm(1)), store.vm_insert(a_vm(2))])
    store.run([store.vm_insert(a_vm(3))])
    assert store.list_vm_ids() == [0, 3]


def test_a_cursor_inside_sqlalchemys_transaction_commits_with_it(store: Store) -> None:
    with store._conn.begin(), DriverCursor(store._conn) as cursor:
        cursor.executemany(INSERT_VM, [store.vm_insert(a_vm(4)).vm])
    assert store.list_vm_ids() == [4]


def _lease_row(oid: int, ip: int) -> dict[str, object]:
    return {"oid": oid, "ip": ip, "mac_prefix": 2, "mac_suffix": ip, "vid": -1, "used": True}
