"""Bring a database to the newest schema with Alembic, run in code (no alembic.ini).

Alembic logs at INFO when it is imported and at every step; oned logs one line of its own
instead, so Alembic is imported and run with its loggers held at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from oned.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = str(Path(__file__).with_name("migrations"))


def alembic_config(connection: Connection | None = None) -> Config:
    """The configuration env.py expects: our scripts, and the connection to run them on."""
    with _quiet_alembic():
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, where: str) -> str:
    """Migrate to head inside one transaction (where the backend has transactional DDL).

    Returns the line oned logs: ``Database schema at revision 0001 (created)``, ``(migrated from
    X)`` or ``(up to date)``. A database written by a newer oned raises StoreError.
    """
    with _quiet_alembic():
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = alembic_config(connection)
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        known = {script.revision for script in scripts.walk_revisions()}
        with connection.begin():
            before = MigrationContext.configure(connection).get_current_revision()
            if before is not None and before not in known:
                raise StoreError(
                    f"{where} is at schema revision {before}, unknown to this oned (newest: {head})"
                )
            if before != head:
                command.upgrade(config, "head")
    return f"Database schema at revision {head} ({_outcome(before, head)})"


def _outcome(before: str | None, head: str | None) -> str:
    if before is None:
        return "created"
    if before == head:
        return "up to date"
    return f"migrated from {before}"


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
