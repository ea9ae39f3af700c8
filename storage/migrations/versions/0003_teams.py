"""teams: the directory sync's delta cursor

Revision ID: 0003
Revises: 0001 (the lead re-chains this to 0002 at merge)
Create Date: 2026-11-30
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_cursor',
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )


def downgrade() -> None:
    op.drop_table('sync_cursor')
