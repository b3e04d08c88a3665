"""The image repository (issue 13): image names unique per owner, and the image's PATH, SIZE,
FSTYPE and CHECKSUM; RUNNING_VMS is derived from the VMs and no longer stored.

No oned before this revision wrote an image row, so the table is recreated rather than altered
(the same statements on SQLite, PostgreSQL and MariaDB); the downgrade recreates 0001's table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Frozen: later changes go into new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
BODY = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def col(name, type_):
    return sa.Column(name, type_, nullable=False)


def _head_columns():
    return (
        sa.Column("oid", sa.Integer, nullable=False, autoincrement=False),
        col("uid", sa.Integer),
        col("name", sa.String(255)),
        col("type", sa.Integer),
        col("public", sa.Boolean),
        col("persistent", sa.Boolean),
        col("regtime", sa.BigInteger),
        col("source", sa.Text),
    )


def upgrade() -> None:
    op.drop_table("image_pool")
    op.create_table(
        "image_pool",
        *_head_columns(),
        col("path", sa.Text),
        col("size", sa.BigInteger),
        col("fstype", sa.Text),
        col("checksum", sa.Text),
        col("state", sa.Integer),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_image_pool"),
        sa.UniqueConstraint("uid", "name", name="uq_image_pool_name"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("image_pool")
    op.create_table(
        "image_pool",
        *_head_columns(),
        col("state", sa.Integer),
        col("running_vms", sa.Integer),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_image_pool"),
        sa.UniqueConstraint("name", name="uq_image_pool_name"),
        **MYSQL,
    )
