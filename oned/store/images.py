"""Images of the repository in SQL: the statements ``Store`` runs inside its transactions.

One row per image; a name is unique per owner (UNIQUE(uid, name), revision 0004), so an insert
that collides rolls back and ``Store`` raises DuplicateName. What a copy in progress has done
is not stored: after a restart only the image's stored state says how it ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.records import Image
from oned.store import rows
from oned.store.schema import image_pool

_INSERT = image_pool.insert()
_UPDATE = image_pool.update().where(image_pool.c.oid == sa.bindparam("b_oid"))
_DELETE = image_pool.delete().where(image_pool.c.oid == sa.bindparam("b_oid"))
_SELECT = sa.select(*rows.IMAGE_COLUMNS).order_by(image_pool.c.oid)


def load(conn: Connection) -> list[Image]:
    """Every image in id order."""
    return [rows.image_from(row) for row in conn.execute(_SELECT)]


def insert(conn: Connection, image: Image) -> None:
    conn.execute(_INSERT, {"oid": image.id, **rows.image_params(image)})


def update(conn: Connection, image: Image) -> sa.CursorResult:
    return conn.execute(_UPDATE, {"b_oid": image.id, **rows.image_params(image)})


def delete(conn: Connection, iid: int) -> None:
    conn.execute(_DELETE, {"b_oid": iid})
