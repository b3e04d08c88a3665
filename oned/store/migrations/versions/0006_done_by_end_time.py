"""DONE VMs by the time they ended (issue 18): ``onedb purge-done`` takes the oldest first.

An index on (state, etime) lets the purge read each batch of DONE VMs that ended before a time
as an index range, in end-time order, however many DONE VMs the database holds; without it
every batch would sort all of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Frozen: later changes go into new revisions, never here.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_vm_pool_state_etime", "vm_pool", ["state", "etime"])


def downgrade() -> None:
    op.drop_index("ix_vm_pool_state_etime", table_name="vm_pool")
