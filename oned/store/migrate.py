"""Bring a database to the newest schema with Alembic, run in code (no alembic.ini).

Alembic (and with it mako and pygments, about 4 MB that stay for the life of the process) is
imported only when the database is not already at the head revision: a start on an up-to-date
schema reads the alembic_version table with one query and compares it with the head the
migration scripts name, read as text (issue 18, start-up memory). Anything else (no table, an
older or unknown revision, scripts that do not name exactly one head) goes through Alembic.

Alembic logs at INFO when it is imported and at every step; oned logs one line of its own
instead, so Alembic is imported and run with its loggers held at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = str(Path(__file__).with_name("migrations"))
# The two assignments every revision script starts with (script.py.mako writes them with
# repr(), ruff format turns the quotes double; a tuple of parents, a merge, does not match).
_REVISION = re.compile(r"""^(down_revision|revision) = (?:["'](\w+)["']|None)[ \t]*$""", re.M)
_VERSIONS = sa.text("SELECT version_num FROM alembic_version")


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
    head = script_head()
    if head is not None and stored_revisions(connection) == [head]:
        return f"Database schema at revision {head} ({_outcome(head, head)})"
    return _alembic_upgrade(connection, where)


def script_head(location: str = SCRIPT_LOCATION) -> str | None:
    """The head revision of the scripts in ``location``/versions, read as text without
    importing them or Alembic; None unless exactly one revision is nobody's down_revision
    (then Alembic decides, and says what is wrong)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in Path(location, "versions").glob("*.py"):
        found = dict(_REVISION.findall(script.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            return None  # a script this reader does not understand: leave it to Alembic
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def stored_revisions(connection: Connection) -> list[str] | None:
    """The revisions alembic_version holds (one, unless branched); None without the table."""
    with connection.begin():
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return [row[0] for row in connection.execute(_VERSIONS)]


def _alembic_upgrade(connection: Connection, where: str) -> str:
    """upgrade() through Alembic: create, migrate, or refuse an unknown revision."""
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
