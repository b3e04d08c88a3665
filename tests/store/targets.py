"""The databases store tests run against: SQLite files and scratch databases on local servers."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import sqlalchemy as sa

from oned.store import Store
from oned.store.engine import create_engine, describe

BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_ADMIN = {
    "postgresql": {"server": "127.0.0.1", "user": "postgres", "db_name": "test"},
    "mysql": {"server": "127.0.0.1", "user": "root", "db_name": "test"},
}
LOGGER = "test.store"


@dataclass(frozen=True)
class Db:
    """The DB attribute of oned.conf, as the store reads it."""

    backend: str
    server: str = ""
    port: int = 0
    user: str = ""
    passwd: str = ""
    db_name: str = ""
    synchronous: str = "NORMAL"


@dataclass
class Target:
    """One empty database on one backend; opens stores on it and closes them afterwards."""

    db: Db
    db_file: str
    opened: list[Store] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return self.db.backend

    def open(self) -> Store:
        store = Store.open(self.db, self.db_file, logging.getLogger(LOGGER))
        self.opened.append(store)
        return store

    def engine(self) -> sa.Engine:
        return create_engine(self.db, self.db_file)

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


class ServerUnreachable(Exception):
    pass


def skipped_backends() -> set[str]:
    """Backends named in ONECLOUD_SKIP_DB (comma-separated)."""
    return {name.strip() for name in os.environ.get("ONECLOUD_SKIP_DB", "").split(",")}


def scratch_database(backend: str, prefix: str = "onecloud_test") -> Iterator[Db]:
    """Create ``<prefix>_<random>`` on the local server, yield its settings, drop it after."""
    admin = Db(backend, **SERVER_ADMIN[backend])
    name = f"{prefix}_{secrets.token_hex(4)}"
    engine = create_engine(admin, "").execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise ServerUnreachable(f"{describe(admin, '')} is unreachable ({exc.orig})") from exc
    try:
        yield replace(admin, db_name=name)
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        engine.dispose()  # a fresh connection: the pooled one may predate a server restart
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        engine.dispose()


def drop_everything(target: Target) -> None:
    """Empty a server database again, alembic_version included."""
    engine = target.engine()
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
    finally:
        engine.dispose()
