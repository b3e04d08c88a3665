"""The SQL schema at the newest migration, as SQLAlchemy Core tables (one module, no ORM).

Table and column names are OpenNebula's where it has them (reference Appendix A and §3.5).
Types are chosen to behave the same on SQLite, PostgreSQL and MySQL/MariaDB: ``Integer`` object
ids (an SQLite ``INTEGER PRIMARY KEY`` is the rowid), ``BigInteger`` times and counters,
``String(255)`` for names that carry a UNIQUE constraint, ``Text`` elsewhere. On MySQL every table
is InnoDB, utf8mb4 with the binary collation, so that names compare case-sensitively there too.

This module describes the head revision; ``migrations/versions`` holds how a database got there.
A test checks that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

NAME_LENGTH = 255

NAMING = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}

# NOTE: utf8mb4_bin is PAD SPACE on MariaDB: "a" and "a " collide there. Callers reject names
# with surrounding blanks before they reach the store.
MYSQL_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

metadata = sa.MetaData(naming_convention=NAMING)

Name = sa.String(NAME_LENGTH)
# MySQL TEXT stops at 64 KB; a VM template with a large CONTEXT may not.
Body = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _oid() -> sa.Column:
    return sa.Column("oid", sa.Integer, primary_key=True, autoincrement=False)


def _int(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False)


def _big(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False)


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False)


def _name(name: str = "name", *, unique: bool = False) -> sa.Column:
    return sa.Column(name, Name, nullable=False, unique=unique)


def _body(name: str = "template") -> sa.Column:
    return sa.Column(name, Body, nullable=False)


def _flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean, nullable=False)


SHARE_COLUMNS = (
    "disk_usage",
    "mem_usage",
    "cpu_usage",
    "max_disk",
    "max_mem",
    "max_cpu",
    "free_disk",
    "free_mem",
    "free_cpu",
    "used_disk",
    "used_mem",
    "used_cpu",
    "running_vms",
)

HISTORY_TIMES = ("stime", "etime", "pstime", "petime", "rstime", "retime", "estime", "eetime")

user_pool = sa.Table(
    "user_pool",
    metadata,
    _oid(),
    _name(unique=True),
    _text("password"),
    _flag("enabled"),
    **MYSQL_OPTIONS,
)

# The HOST_SHARE columns of OpenNebula's host_shares table live in host_pool: a monitoring
# cycle then writes one row per host, and loading needs no join.
host_pool = sa.Table(
    "host_pool",
    metadata,
    _oid(),
    _name(unique=True),
    _int("state"),
    _int("prev_state"),
    _text("im_mad"),
    _text("vm_mad"),
    _text("tm_mad"),
    _big("last_mon_time"),
    _text("cluster"),
    *(_big(name) for name in SHARE_COLUMNS),
    _body(),
    **MYSQL_OPTIONS,
)

vm_pool = sa.Table(
    "vm_pool",
    metadata,
    _oid(),
    _int("uid"),
    _name(),
    _int("state"),
    _int("lcm_state"),
    _int("prev_state"),
    _int("prev_lcm_state"),
    _big("last_poll"),
    _big("stime"),
    _big("etime"),
    _text("deploy_id"),
    _big("memory"),
    _big("cpu"),
    _big("net_tx"),
    _big("net_rx"),
    _int("resched"),
    _body(),
    sa.Column("user_template", Body, nullable=True),  # revision 0002; NULL: none
    sa.Index(None, "state"),
    sa.Index(None, "uid", "state"),
    sa.Index(None, "state", "etime"),  # revision 0006: the purge of old DONE VMs
    **MYSQL_OPTIONS,
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("vid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    _name("host_name"),
    _int("hid"),
    _text("vm_dir"),
    _text("vm_mad"),
    _text("tm_mad"),
    *(_big(name) for name in HISTORY_TIMES),
    _int("reason"),
    **MYSQL_OPTIONS,
)

network_pool = sa.Table(
    "network_pool",
    metadata,
    _oid(),
    _int("uid"),
    _name(unique=True),
    _int("type"),
    _text("bridge"),
    _flag("public"),
    _body(),
    **MYSQL_OPTIONS,
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("oid", sa.Integer, primary_key=True, autoincrement=False),  # the network
    sa.Column("ip", sa.BigInteger, primary_key=True, autoincrement=False),
    _big("mac_prefix"),
    _big("mac_suffix"),
    _int("vid"),
    _flag("used"),
    **MYSQL_OPTIONS,
)

# NOTE: OpenNebula 2.0 makes image names unique across all users (UNIQUE(name)); as modern
# OpenNebula, a name is unique per owner here (revision 0004), so users never learn each other's
# names from a refusal. RUNNING_VMS is not stored: it follows from the VMs (Pools.image_users).
image_pool = sa.Table(
    "image_pool",
    metadata,
    _oid(),
    _int("uid"),
    _name(),
    _int("type"),
    _flag("public"),
    _flag("persistent"),
    _big("regtime"),
    _text("source"),
    _text("path"),
    _big("size"),  # MB
    _text("fstype"),
    _text("checksum"),  # "sha256:<hex>", '' until copied
    _int("state"),
    _body(),
    # named as the single-column UNIQUE names are, so DuplicateName recognises it
    sa.UniqueConstraint("uid", "name", name="uq_image_pool_name"),
    **MYSQL_OPTIONS,
)

# EC2 credentials (issue 15, revision 0005): the secret is sealed (oned.ec2keys, base64 text),
# never stored in clear; the key that opens it is in etc/ec2_keys.key, not in the database.
ec2_keys = sa.Table(
    "ec2_keys",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    _int("uid"),
    _text("secret_enc"),
    _big("created"),
    sa.Index(None, "uid"),
    **MYSQL_OPTIONS,
)

# NOTE: OpenNebula's pool_control: the highest id each pool ever gave (-1: none yet), so that
# an id is never handed out twice, not even after its object was deleted and oned restarted.
pool_control = sa.Table(
    "pool_control",
    metadata,
    sa.Column("tablename", sa.String(32), primary_key=True),
    _int("last_oid"),
    **MYSQL_OPTIONS,
)

POOLS = {
    "user": user_pool,
    "host": host_pool,
    "vm": vm_pool,
    "network": network_pool,
    "image": image_pool,
}
