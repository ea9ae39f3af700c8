"""health check row: /healthz proves the database takes writes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'health_check',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('checked_at', storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'checked_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('health_check')
