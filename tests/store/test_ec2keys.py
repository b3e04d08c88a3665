"""EC2 keys in SQL on every backend (issue 15): read back as written, deleted one by one and
with their user in the same transaction, the secret never stored in clear, revision 0005
reversible."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from oned import ec2keys
from oned.ec2keys import Ec2Key
from oned.records import User
from oned.store import Store, StoreError, migrate
from tests.store.targets import Target

pytestmark = pytest.mark.db

SEALING_KEY = bytes(32)
SECRET = "Secret-in-clear-never-stored-0123456789"


def a_key(uid: int, created: int = 1764637200, secret: str = SECRET) -> Ec2Key:
    access_key_id = ec2keys.new_access_key_id()
    sealed = ec2keys.seal(SEALING_KEY, access_key_id, secret)
    return Ec2Key(access_key_id, uid, sealed, created)


def with_users(store: Store, *uids: int) -> Store:
    for uid in uids:
        store.insert_user(User(uid, f"user{uid}", "x"))
    return store


def test_keys_are_read_back_as_written_by_owner_then_age(target: Target) -> None:
    store = with_users(target.open(), 1, 2)
    keys = [a_key(2, 5), a_key(1, 9), a_key(1, 3)]
    for key in keys:
        store.insert_ec2_key(key)
    store.close()
    loaded = target.open().load_ec2_keys()
    assert loaded == [keys[2], keys[1], keys[0]]
    assert ec2keys.unseal(SEALING_KEY, loaded[0].access_key_id, loaded[0].secret_enc) == SECRET


def test_an_access_key_id_is_stored_once(target: Target) -> None:
    store = with_users(target.open(), 1)
    key = a_key(1)
    store.insert_ec2_key(key)
    with pytest.raises(StoreError):
        store.insert_ec2_key(Ec2Key(key.access_key_id, 1, key.secret_enc, 0))
    assert store.load_ec2_keys() == [key]


def test_a_deleted_key_is_gone_and_the_others_stay(target: Target) -> None:
    store = with_users(target.open(), 1)
    gone, kept = a_key(1, 1), a_key(1, 2)
    store.insert_ec2_key(gone)
    store.insert_ec2_key(kept)
    store.delete_ec2_key(gone.access_key_id)
    assert store.load_ec2_keys() == [kept]


def test_deleting_a_user_deletes_its_keys_in_the_same_transaction(target: Target) -> None:
    store = with_users(target.open(), 1, 2)
    theirs, mine = a_key(1), a_key(2)
    store.insert_ec2_key(theirs)
    store.insert_ec2_key(mine)
    store.delete_user(1)
    assert store.load_ec2_keys() == [mine]
    assert [u.id for u in store.load_users()] == [2]


def test_no_column_holds_the_secret_in_clear(target: Target) -> None:
    store = with_users(target.open(), 1)
    store.insert_ec2_key(a_key(1))
    store.close()
    engine = target.engine()
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM ec2_keys")).one()
    finally:
        engine.dispose()
    assert SECRET not in " ".join(map(str, row))


def test_revision_0005_downgrades_to_0004_and_back(target: Target) -> None:
    target.open().close()
    engine = target.engine()
    try:
        with engine.connect() as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), "0004")
        assert "ec2_keys" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    store = with_users(target.open(), 1)
    key = a_key(1)
    store.insert_ec2_key(key)
    assert store.load_ec2_keys() == [key]
