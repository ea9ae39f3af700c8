"""worker heartbeat: a dead delivery engine's leases are reclaimed in seconds;
announcement escalation (escalate:DURATION), where a receipt was clicked

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'worker_heartbeat',
        sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('beat_at', storage.types.UTCDateTime(), nullable=False),
        sa.Column('started_at', storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('owner'),
    )
    with op.batch_alter_table('announcement') as batch:
        batch.add_column(sa.Column('escalate_after', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('escalated_at', storage.types.UTCDateTime(), nullable=True))
    with op.batch_alter_table('receipt') as batch:
        batch.add_column(sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('receipt') as batch:
        batch.drop_column('platform')
    with op.batch_alter_table('announcement') as batch:
        batch.drop_column('escalated_at')
        batch.drop_column('escalate_after')
    op.drop_table('worker_heartbeat')
