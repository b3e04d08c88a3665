"""EC2 credentials of users (issue 15): one row per access key, its secret sealed.

``secret_enc`` is base64 text of an AES-256-GCM ciphertext (oned.ec2keys) whose key lives in
``etc/ec2_keys.key``, outside the database. Indexed by owner: a user's keys are listed and
deleted with the user.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Frozen: later changes go into new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "ec2_keys",
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("uid", sa.Integer, nullable=False),
        sa.Column("secret_enc", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_ec2_keys"),
        **MYSQL,
    )
    op.create_index("ix_ec2_keys_uid", "ec2_keys", ["uid"])


def downgrade() -> None:
    op.drop_index("ix_ec2_keys_uid", table_name="ec2_keys")
    op.drop_table("ec2_keys")
