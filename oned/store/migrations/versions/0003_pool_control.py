"""Every pool's id counter in pool_control, so that no id is handed out twice, even after the
object with the highest id was deleted and oned restarted.

The counters start at the highest id each pool holds now (-1 when empty): ids deleted before
this revision cannot be known any more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Frozen: later changes go into new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
POOLS = ("user_pool", "host_pool", "vm_pool", "network_pool", "image_pool")


def upgrade() -> None:
    control = op.create_table(
        "pool_control",
        sa.Column("tablename", sa.String(32), nullable=False),
        sa.Column("last_oid", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tablename", name="pk_pool_control"),
        **MYSQL,
    )
    conn = op.get_bind()
    for name in POOLS:
        oid = sa.table(name, sa.column("oid", sa.Integer)).c.oid
        last = conn.execute(sa.select(sa.func.coalesce(sa.func.max(oid), -1))).scalar_one()
        conn.execute(control.insert().values(tablename=name, last_oid=last))


def downgrade() -> None:
    op.drop_table("pool_control")
