"""tiers the Secretariat set stand (records.tier_floors); networks found by member (index)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier_floors', sa.JSON(), server_default='{}', nullable=False))
    op.create_index('ix_network_members_centre_id', 'network_members', ['centre_id'])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index('ix_network_members_centre_id', table_name='network_members')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_column('tier_floors')
