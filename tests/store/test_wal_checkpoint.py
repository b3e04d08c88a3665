"""SQLite's WAL is checkpointed by a thread of its own, never inside one of oned's commits, and
stays bounded however much oned writes (issue 18: one.vm.info p99 while clients allocate)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from oned.store.checkpoint import Checkpointer
from oned.store.engine import create_engine
from tests.store.targets import Db
from tests.waiting import wait_for

ROW = "x" * 8000  # two pages of WAL and more per commit
MB = 2**20


@pytest.fixture
def db_file(tmp_path) -> str:
    return str(tmp_path / "one.db")


@pytest.fixture
def engine(db_file: str) -> Iterator[sa.Engine]:
    engine = create_engine(Db("sqlite"), db_file)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    yield engine
    engine.dispose()


def wal_size(db_file: str) -> int:
    try:
        return os.path.getsize(db_file + "-wal")
    except FileNotFoundError:
        return 0


def write(conn: sa.Connection, commits: int) -> None:
    for _ in range(commits):
        conn.execute(sa.text("INSERT INTO t (body) VALUES (:b)"), {"b": ROW})
        conn.commit()


def test_onedS_connections_never_checkpoint_inside_a_commit(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_the_wal_stays_bounded_while_oned_writes_a_lot(engine: sa.Engine, db_file: str) -> None:
    """40 MB of rows written in bursts, each followed by a pass of the thread that copies all
    of it: the WAL starts again (a pass that runs just as a commit starts it again makes that
    commit append instead), and past ``limit`` it is truncated, so it never holds everything
    (SQLite's own checkpoint is off)."""
    checkpoints = engine.checkpoints  # type: ignore[attr-defined]
    checkpoints.interval = 0.05  # a WAL that starts again does not grow: passes by time
    checkpoints.limit = 4 * MB
    largest = 0
    with engine.connect() as conn:
        for _ in range(40):
            write(conn, MB // len(ROW))
            largest = max(largest, wal_size(db_file))
            wait_for(checkpoints.caught_up)  # the next commit starts the WAL again
    assert largest < 16 * MB  # of about 84 MB of WAL written
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 40 * (MB // len(ROW))


def test_a_writer_that_never_pauses_has_its_wal_truncated_past_the_limit(
    db_file: str, engine: sa.Engine
) -> None:
    """Past ``limit`` bytes the thread truncates the WAL once the writer lets it (here: it
    stops writing), without waiting for the lock."""
    engine.checkpoints.stop()  # type: ignore[attr-defined]
    with engine.connect() as conn:
        write(conn, 4 * MB // len(ROW))
        assert wal_size(db_file) >= 4 * MB  # nothing checkpointed it
        small = Checkpointer(db_file, logging.getLogger("test"), limit=MB, poll=0.01)
        small.start()
        try:
            wait_for(lambda: small.truncates >= 1)
            assert wal_size(db_file) < MB
            write(conn, 10)
        finally:
            small.stop()
        assert not small.running


def test_the_thread_stops_when_the_store_closes_and_the_wal_goes(
    engine: sa.Engine, db_file: str
) -> None:
    checkpoints = engine.checkpoints  # type: ignore[attr-defined]
    with engine.connect() as conn:
        write(conn, 50)
    assert checkpoints.running
    engine.dispose()
    assert not checkpoints.running
    assert not os.path.exists(db_file + "-wal")
