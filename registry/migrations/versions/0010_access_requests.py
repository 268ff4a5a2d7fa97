"""access requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        'access_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('country_iso', sa.String(length=2), nullable=False),
        sa.Column('family_name', sa.String(length=100), nullable=False),
        sa.Column('given_name', sa.String(length=100), nullable=False),
        sa.Column('organisation', sa.String(length=200), nullable=False),
        sa.Column('function', sa.String(length=200), nullable=False),
        sa.Column('phone', sa.String(length=50), nullable=False),
        sa.Column('organisation_type', sa.String(length=30), nullable=False),
        sa.Column('role_requested', sa.String(length=20), nullable=False),
        sa.Column('justification', sa.Text(), nullable=False),
        sa.Column('consent_at', sa.DateTime(), nullable=False),
        sa.Column('language', sa.String(length=2), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('token_expires_at', sa.DateTime(), nullable=True),
        sa.Column('verified_at', sa.DateTime(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=False),
        sa.Column('granted_role', sa.String(length=20), nullable=True),
        sa.Column('granted_party_iso', sa.String(length=2), nullable=True),
        sa.Column('granted_until', sa.Date(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('anonymised_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['country_iso'], ['parties.iso']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['granted_party_iso'], ['parties.iso']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_requests_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_status'), ['status'], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_requests_status'))
        batch_op.drop_index(batch_op.f('ix_access_requests_email'))
        batch_op.drop_index(batch_op.f('ix_access_requests_created_at'))
    op.drop_table('access_requests')
