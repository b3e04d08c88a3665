"""Opening a database: connecting, migrating to the newest schema, and saying so in one line."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from oned.store import Store, StoreError, migrate, schema
from tests.store.targets import LOGGER, Target

pytestmark = pytest.mark.db

TABLES = {
    "user_pool",
    "host_pool",
    "vm_pool",
    "history",
    "network_pool",
    "leases",
    "image_pool",
    "pool_control",
}


def _store_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_opening_an_empty_database_creates_the_schema_and_logs_one_line(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """A first start builds every table and tells the operator in a single INFO line."""
    with caplog.at_level(logging.INFO):
        target.open()
    assert _store_lines(caplog) == ["Database schema at revision 0006 (created)"]
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.INFO]
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
    engine = target.engine()
    try:
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_reopening_a_migrated_database_says_it_is_up_to_date(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """The second start changes nothing and says so."""
    target.open().close()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        target.open()
    assert _store_lines(caplog) == ["Database schema at revision 0006 (up to date)"]


def test_the_schema_module_matches_what_the_migrations_built(store: Store, target: Target) -> None:
    """schema.py describes the head revision exactly, so queries and migrations cannot drift."""
    engine = target.engine()
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, schema.metadata) == []
    finally:
        engine.dispose()


def test_vm_pool_is_indexed_by_state_and_by_owner(store: Store, target: Target) -> None:
    """Listings of live VMs, and of one user's VMs, reach them without walking DONE VMs."""
    engine = target.engine()
    try:
        indexes = sa.inspect(engine).get_indexes("vm_pool")
    finally:
        engine.dispose()
    assert {tuple(index["column_names"]) for index in indexes} >= {("state",), ("uid", "state")}


def test_a_database_from_a_newer_oned_is_refused(target: Target) -> None:
    """An unknown schema revision stops the start rather than guessing."""
    target.open().close()
    engine = target.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 9999, unknown to this oned"):
        target.open()


def test_an_unreachable_database_raises_a_one_line_store_error(target: Target, tmp_path) -> None:
    """The message names the backend, where it was looked for and the driver's reason."""
    if target.backend == "sqlite":
        db_file, expected = str(tmp_path / "missing" / "one.db"), "missing/one.db"
        db = target.db
    else:
        db_file, expected = "", f'{target.backend} database "{target.db.db_name}" on 127.0.0.1:1'
        db = replace(target.db, port=1)
    with pytest.raises(StoreError) as raised:
        Store.open(db, db_file, logging.getLogger(LOGGER))
    message = str(raised.value)
    assert message.startswith("cannot connect to ")
    assert expected in message
    assert "\n" not in message


def test_an_unknown_synchronous_mode_is_refused(target: Target) -> None:
    """SYNCHRONOUS accepts NORMAL or FULL; anything else is a configuration mistake."""
    if target.backend != "sqlite":
        pytest.skip("SYNCHRONOUS only applies to sqlite")
    with pytest.raises(StoreError, match="NORMAL or FULL"):
        Store.open(replace(target.db, synchronous="SOMETIMES"), target.db_file, logging.getLogger())


def test_sqlite_runs_in_wal_mode_with_the_synchronous_level_asked(target: Target) -> None:
    """WAL, and synchronous FULL (2) when asked for it, on every connection."""
    if target.backend != "sqlite":
        pytest.skip("pragmas of sqlite")
    target.db = replace(target.db, synchronous="FULL")
    store = target.open()
    connection = store._conn
    assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_the_log_line_names_the_revision_a_database_was_migrated_from() -> None:
    """An older database says which revision it came from."""
    assert migrate._outcome("0001", "0002") == "migrated from 0001"
    assert migrate._outcome(None, "0002") == "created"
    assert migrate._outcome("0002", "0002") == "up to date"
