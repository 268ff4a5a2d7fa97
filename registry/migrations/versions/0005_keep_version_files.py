"""files kept for old versions

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_column('retired')
