"""Every pool's id counter in pool_control (revision 0003), on every backend (issue 12)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from oned.records import User
from oned.store import Store, migrate, rows
from tests.store.targets import Target
from tests.store.test_networks import ranged
from tests.store.test_records import a_host
from tests.store.test_user_template import a_vm

pytestmark = pytest.mark.db


def test_a_deleted_highest_id_is_not_given_again_after_a_restart(
    store: Store, target: Target
) -> None:
    """Finding 5: ids came back after `one stop; one start` (the counter was max(oid) + 1)."""
    for uid in (0, 1, 2):
        store.insert_user(User(id=uid, name=f"user{uid}", password="x"))
    store.insert_host(a_host(0))
    store.insert_host(a_host(1))
    store.insert_network(ranged(0))
    store.insert_vm(a_vm(4))
    store.delete_user(2)
    store.delete_host(1)
    store.delete_host(0)
    store.delete_network(0)
    store.close()
    again = target.open()
    assert again.next_oids() == {"user": 3, "host": 2, "vm": 5, "network": 1, "image": 0}


def test_an_empty_database_starts_every_pool_at_id_0(store: Store) -> None:
    """A fresh cloud, as OpenNebula's: oneadmin gets uid 0, the first host id 0."""
    assert set(store.next_oids().values()) == {0}


def test_migration_0003_starts_the_counters_at_the_highest_ids_held(target: Target) -> None:
    """A database of revision 0002 keeps counting after its highest ids (earlier deletions
    cannot be known any more)."""
    engine = target.engine()
    try:
        with engine.connect() as conn, conn.begin():
            command.upgrade(migrate.alembic_config(conn), "0002")
        with engine.begin() as conn:
            users = sa.Table("user_pool", sa.MetaData(), autoload_with=conn)
            for uid in (0, 7):
                user = User(id=uid, name=f"u{uid}", password="x")
                conn.execute(users.insert(), {"oid": uid, **rows.user_params(user)})
    finally:
        engine.dispose()
    store = target.open()
    assert store.next_oids() == {"user": 8, "host": 0, "vm": 0, "network": 0, "image": 0}
    store.delete_user(7)
    store.close()
    assert target.open().next_oids()["user"] == 8
