"""Every store test runs against SQLite (a temporary file), PostgreSQL and MariaDB.

Each test session creates its own uniquely named database on each server (so parallel runs never
collide) and drops it at the end; each test starts from an empty database. A server that cannot
be reached FAILS its tests, unless ONECLOUD_SKIP_DB (e.g. ``postgresql,mysql``) names it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oned.store import Store
from tests.store.targets import (
    BACKENDS,
    Db,
    ServerUnreachable,
    Target,
    drop_everything,
    scratch_database,
    skipped_backends,
)


def _session_database(backend: str) -> Iterator[Db]:
    databases = scratch_database(backend)
    try:
        db = next(databases)
    except ServerUnreachable as exc:
        pytest.fail(f"{exc}; start it, or set ONECLOUD_SKIP_DB={backend} to skip its tests")
    yield db
    databases.close()


@pytest.fixture(scope="session")
def postgresql_db() -> Iterator[Db]:
    yield from _session_database("postgresql")


@pytest.fixture(scope="session")
def mysql_db() -> Iterator[Db]:
    yield from _session_database("mysql")


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path) -> Iterator[Target]:
    """An empty database on each backend in turn."""
    backend = request.param
    if backend in skipped_backends():
        pytest.skip(f"ONECLOUD_SKIP_DB names {backend}")
    if backend == "sqlite":
        target = Target(Db("sqlite"), str(tmp_path / "one.db"))
    else:
        target = Target(request.getfixturevalue(f"{backend}_db"), "")
    yield target
    target.close_all()
    if backend != "sqlite":
        drop_everything(target)


@pytest.fixture
def store(target: Target) -> Store:
    """A store opened (and migrated) on an empty database of each backend."""
    return target.open()
