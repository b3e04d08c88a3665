"""EC2 keys in SQL: the statements ``Store`` runs inside its transactions (revision 0005).

One row per access key with its sealed secret (oned.ec2keys); nothing here sees a secret in
clear. A user's keys go in the transaction that deletes the user.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from oned.ec2keys import Ec2Key
from oned.store.schema import ec2_keys

_COLUMNS = (ec2_keys.c.access_key_id, ec2_keys.c.uid, ec2_keys.c.secret_enc, ec2_keys.c.created)
_SELECT = sa.select(*_COLUMNS).order_by(
    ec2_keys.c.uid, ec2_keys.c.created, ec2_keys.c.access_key_id
)
_INSERT = ec2_keys.insert()
_DELETE = ec2_keys.delete().where(ec2_keys.c.access_key_id == sa.bindparam("b_id"))
_DELETE_OF_USER = ec2_keys.delete().where(ec2_keys.c.uid == sa.bindparam("b_uid"))


def load(conn: Connection) -> list[Ec2Key]:
    """Every key, by owner, oldest first."""
    return [Ec2Key(*row) for row in conn.execute(_SELECT)]


def insert(conn: Connection, key: Ec2Key) -> None:
    conn.execute(
        _INSERT,
        {
            "access_key_id": key.access_key_id,
            "uid": key.uid,
            "secret_enc": key.secret_enc,
            "created": key.created,
        },
    )


def delete(conn: Connection, access_key_id: str) -> None:
    conn.execute(_DELETE, {"b_id": access_key_id})


def delete_of_user(conn: Connection, uid: int) -> None:
    conn.execute(_DELETE_OF_USER, {"b_uid": uid})
