"""the e-mail delivery queue, retried with back-off

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 20:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        'mail_queue',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('recipient', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=998), nullable=False),
        sa.Column('message', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('claimed_until', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_mail_queue_next_attempt_at', 'mail_queue', ['next_attempt_at'])
    op.create_index('ix_mail_queue_sent_at', 'mail_queue', ['sent_at'])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index('ix_mail_queue_sent_at', table_name='mail_queue')
    op.drop_index('ix_mail_queue_next_attempt_at', table_name='mail_queue')
    op.drop_table('mail_queue')
