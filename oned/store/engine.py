"""How to reach each database backend: the URL, the driver options and SQLite's pragmas.

``DB = [BACKEND = "sqlite" | "postgresql" | "mysql", ...]`` in oned.conf selects the backend;
SQLite keeps its file at ``var/one.db`` in WAL mode, checkpointed by a thread of its own while
the engine is in use (oned.store.checkpoint), PostgreSQL goes through psycopg 3 and
MySQL/MariaDB through PyMySQL with utf8mb4.
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from oned.store.checkpoint import Checkpointer
from oned.store.errors import StoreError, driver_reason

BACKENDS = ("sqlite", "postgresql", "mysql")
SYNCHRONOUS = ("NORMAL", "FULL")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
CONNECT_TIMEOUT = 10  # seconds: an unreachable server stops oned's start, it does not hang it


class DbSettings(Protocol):
    """The ``DB`` attribute of oned.conf, as the config module parses it."""

    backend: str
    server: str
    port: int  # 0 selects the backend's default port
    user: str
    passwd: str
    db_name: str
    synchronous: str  # sqlite only


def port_of(db: DbSettings) -> int:
    return db.port or DEFAULT_PORTS.get(db.backend, 0)


def describe(db: DbSettings, db_file: str) -> str:
    """Where the data lives, for messages: the file, or backend, server, port and database."""
    if db.backend == "sqlite":
        return f"sqlite database {db_file}"
    return f'{db.backend} database "{db.db_name}" on {db.server or "localhost"}:{port_of(db)}'


def make_url(db: DbSettings, db_file: str) -> URL:
    if db.backend == "sqlite":
        return URL.create("sqlite+pysqlite", database=db_file)
    if db.backend not in DRIVERS:
        raise StoreError(
            f'unknown DB backend "{db.backend}" (expected one of {", ".join(BACKENDS)})'
        )
    query = {"charset": "utf8mb4"} if db.backend == "mysql" else {}
    return URL.create(
        DRIVERS[db.backend],
        username=db.user or None,
        password=db.passwd or None,
        host=db.server or None,
        port=port_of(db),
        database=db.db_name,
        query=query,
    )


def loggable_url(db: DbSettings, db_file: str) -> str:
    """The URL of ``db`` for oned.log: the password, if any, written ``***``."""
    return make_url(db, db_file).render_as_string(hide_password=True)


def create_engine(db: DbSettings, db_file: str) -> Engine:
    """An engine for ``db``; nothing is connected yet."""
    url = make_url(db, db_file)
    if db.backend == "sqlite":
        return _sqlite_engine(url, _synchronous(db), db_file)
    return sa.create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT})


def connect(engine: Engine, db: DbSettings, db_file: str) -> Connection:
    """A connection, or StoreError naming the database and the driver's reason."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise StoreError(
            f"cannot connect to {describe(db, db_file)}: {driver_reason(exc)}"
        ) from exc


def _synchronous(db: DbSettings) -> str:
    value = (db.synchronous or "NORMAL").upper()
    if value not in SYNCHRONOUS:
        raise StoreError(f'DB SYNCHRONOUS must be NORMAL or FULL, not "{db.synchronous}"')
    return value


def _sqlite_engine(url: URL, synchronous: str, db_file: str) -> Engine:
    engine = sa.create_engine(url)
    checkpoints = Checkpointer(db_file, logging.getLogger("one").getChild("ONE"))

    # WAL + NORMAL: a commit survives a crash of oned (not a power cut) at ~30k commits/s;
    # FULL also survives a power cut at ~4k commits/s (reference: performance.md §4.2).
    # No checkpoint inside a commit: the thread of oned.store.checkpoint does them, from the
    # first connection until the engine is disposed of (Store.close).
    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
        checkpoints.start()

    @sa.event.listens_for(engine, "engine_disposed")
    def _stop(_engine) -> None:  # type: ignore[no-untyped-def]
        checkpoints.stop()

    engine.checkpoints = checkpoints  # type: ignore[attr-defined]  # for tests and benchmarks
    return engine
