"""The initial schema: users, hosts (with their shares), VMs and history; networks, leases, images.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Frozen: later changes go into new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
BODY = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
SHARES = (
    "disk_usage", "mem_usage", "cpu_usage", "max_disk", "max_mem", "max_cpu", "free_disk",
    "free_mem", "free_cpu", "used_disk", "used_mem", "used_cpu", "running_vms",
)  # fmt: skip
HISTORY_TIMES = ("stime", "etime", "pstime", "petime", "rstime", "retime", "estime", "eetime")


def col(name, type_):
    return sa.Column(name, type_, nullable=False)


def oid():
    return sa.Column("oid", sa.Integer, nullable=False, autoincrement=False)


def upgrade() -> None:
    _create_user_pool()
    _create_host_pool()
    _create_vm_tables()
    _create_network_tables()
    _create_image_pool()


def _create_user_pool() -> None:
    op.create_table(
        "user_pool",
        oid(),
        col("name", sa.String(255)),
        col("password", sa.Text),
        col("enabled", sa.Boolean),
        sa.PrimaryKeyConstraint("oid", name="pk_user_pool"),
        sa.UniqueConstraint("name", name="uq_user_pool_name"),
        **MYSQL,
    )


def _create_host_pool() -> None:
    op.create_table(
        "host_pool",
        oid(),
        col("name", sa.String(255)),
        col("state", sa.Integer),
        col("prev_state", sa.Integer),
        col("im_mad", sa.Text),
        col("vm_mad", sa.Text),
        col("tm_mad", sa.Text),
        col("last_mon_time", sa.BigInteger),
        col("cluster", sa.Text),
        *(col(name, sa.BigInteger) for name in SHARES),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_host_pool"),
        sa.UniqueConstraint("name", name="uq_host_pool_name"),
        **MYSQL,
    )


def _create_vm_tables() -> None:
    op.create_table(
        "vm_pool",
        oid(),
        col("uid", sa.Integer),
        col("name", sa.String(255)),
        col("state", sa.Integer),
        col("lcm_state", sa.Integer),
        col("prev_state", sa.Integer),
        col("prev_lcm_state", sa.Integer),
        col("last_poll", sa.BigInteger),
        col("stime", sa.BigInteger),
        col("etime", sa.BigInteger),
        col("deploy_id", sa.Text),
        col("memory", sa.BigInteger),
        col("cpu", sa.BigInteger),
        col("net_tx", sa.BigInteger),
        col("net_rx", sa.BigInteger),
        col("resched", sa.Integer),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_vm_pool"),
        **MYSQL,
    )
    op.create_index("ix_vm_pool_state", "vm_pool", ["state"])
    op.create_index("ix_vm_pool_uid_state", "vm_pool", ["uid", "state"])
    op.create_table(
        "history",
        sa.Column("vid", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        col("host_name", sa.String(255)),
        col("hid", sa.Integer),
        col("vm_dir", sa.Text),
        col("vm_mad", sa.Text),
        col("tm_mad", sa.Text),
        *(col(name, sa.BigInteger) for name in HISTORY_TIMES),
        col("reason", sa.Integer),
        sa.PrimaryKeyConstraint("vid", "seq", name="pk_history"),
        **MYSQL,
    )


def _create_image_pool() -> None:
    op.create_table(
        "image_pool",
        oid(),
        col("uid", sa.Integer),
        col("name", sa.String(255)),
        col("type", sa.Integer),
        col("public", sa.Boolean),
        col("persistent", sa.Boolean),
        col("regtime", sa.BigInteger),
        col("source", sa.Text),
        col("state", sa.Integer),
        col("running_vms", sa.Integer),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_image_pool"),
        sa.UniqueConstraint("name", name="uq_image_pool_name"),
        **MYSQL,
    )


def _create_network_tables() -> None:
    op.create_table(
        "network_pool",
        oid(),
        col("uid", sa.Integer),
        col("name", sa.String(255)),
        col("type", sa.Integer),
        col("bridge", sa.Text),
        col("public", sa.Boolean),
        col("template", BODY),
        sa.PrimaryKeyConstraint("oid", name="pk_network_pool"),
        sa.UniqueConstraint("name", name="uq_network_pool_name"),
        **MYSQL,
    )
    op.create_table(
        "leases",
        sa.Column("oid", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("ip", sa.BigInteger, nullable=False, autoincrement=False),
        col("mac_prefix", sa.BigInteger),
        col("mac_suffix", sa.BigInteger),
        col("vid", sa.Integer),
        col("used", sa.Boolean),
        sa.PrimaryKeyConstraint("oid", "ip", name="pk_leases"),
        **MYSQL,
    )


def downgrade() -> None:
    tables = (
        "image_pool",
        "leases",
        "network_pool",
        "history",
        "vm_pool",
        "host_pool",
        "user_pool",
    )
    for table in tables:
        op.drop_table(table)
