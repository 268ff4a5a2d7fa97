"""the count of changes to what pages show, for the page cache

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    table = op.create_table(
        'content_generation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'count': 0}])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table('content_generation')
