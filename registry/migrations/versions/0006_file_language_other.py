"""files.language holds "other" (a language version in none of the three languages)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.alter_column(
            'language', existing_type=sa.String(length=2), type_=sa.String(length=8), existing_nullable=False
        )


def downgrade() -> None:
    """Revert this migration: files in another language become English versions, the nearest fit."""
    op.execute("UPDATE files SET language = 'en' WHERE language = 'other'")
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.alter_column(
            'language', existing_type=sa.String(length=8), type_=sa.String(length=2), existing_nullable=False
        )
