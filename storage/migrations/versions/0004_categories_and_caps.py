"""categories, opt-outs counted, the daily cap's held flag, author quotas

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30

Announcements drafted before categories get their kind's default (``survey`` for
polls, ``general`` otherwise). The opt-outs made before categories existed are
migrated: ``polls`` becomes ``survey`` (the category polls get by default);
``reminders`` is removed, because a reminder now has a category like any other
message (README, "Categories and opting out").
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('announcement') as batch:
        batch.add_column(sa.Column('opted_out', sa.Integer(), nullable=False,
                                   server_default='0'))
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('held', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        'author_quota',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('daily_recipients', sa.Integer(), nullable=False),
        sa.Column('set_by', sa.String(length=320), nullable=False),
        sa.Column('set_at', storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id'),
    )
    op.execute("UPDATE announcement SET category = 'survey' "
               "WHERE category IS NULL AND kind = 'poll'")
    op.execute("UPDATE announcement SET category = 'general' WHERE category IS NULL")
    op.execute("UPDATE opt_out SET category = 'survey' WHERE category = 'polls'")
    op.execute("DELETE FROM opt_out WHERE category = 'reminders'")


def downgrade() -> None:
    op.execute("UPDATE opt_out SET category = 'polls' WHERE category = 'survey'")
    op.drop_table('author_quota')
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('held')
    with op.batch_alter_table('announcement') as batch:
        batch.drop_column('opted_out')
