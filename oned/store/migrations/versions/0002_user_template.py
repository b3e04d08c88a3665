"""USER_TEMPLATE of VMs: a nullable vm_pool.user_template (NULL for VMs that have none).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Frozen: later changes go into new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BODY = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("vm_pool", sa.Column("user_template", BODY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vm_pool") as batch:
        batch.drop_column("user_template")
