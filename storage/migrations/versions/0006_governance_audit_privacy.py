"""governance: audit subjects, append-only audit, link failures, legal holds, tallies

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

The audit log becomes append-only in the database itself: a trigger refuses
UPDATE and DELETE on ``audit_event`` (PostgreSQL and SQLite alike). Wrong
linking codes move out of the audit log into ``link_failure``.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0006'
# The lead re-chains this onto '0004' at merge (map.md): this branch's head is '0001'.
down_revision = '0005'
branch_labels = None
depends_on = None

REFUSAL = "audit_event is append-only: rows cannot be updated or deleted"


def upgrade() -> None:
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('erased_at', storage.types.UTCDateTime(), nullable=True))
    with op.batch_alter_table('audit_event') as batch:
        batch.add_column(sa.Column('subject_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_audit_event_subject_id_person', 'person',
                                 ['subject_id'], ['id'])
        batch.create_index('ix_audit_event_subject_id', ['subject_id'])
        batch.create_index('ix_audit_event_actor_id', ['actor_id'])
    op.create_table(
        'link_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('at', storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_link_failure_account_key', 'link_failure', ['account_key'])
    op.create_index('ix_link_failure_at', 'link_failure', ['at'])
    op.create_table(
        'legal_hold',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id'),
    )
    op.create_table(
        'announcement_tally',
        sa.Column('announcement_id', sa.Integer(), nullable=False),
        sa.Column('deliveries', sa.Text(), nullable=False),
        sa.Column('acknowledged', sa.Integer(), nullable=False),
        sa.Column('answered', sa.Integer(), nullable=False),
        sa.Column('votes', sa.Text(), nullable=False),
        sa.Column('purged_at', storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['announcement_id'], ['announcement.id']),
        sa.PrimaryKeyConstraint('announcement_id'),
    )
    # Old wrong-code rows were rate-limit state, not audit: they expire within the hour.
    op.execute("DELETE FROM audit_event WHERE action = 'link_failed'")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{REFUSAL}';
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER audit_event_append_only
            BEFORE UPDATE OR DELETE ON audit_event
            FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
        """)
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER audit_event_no_{verb.lower()}
                BEFORE {verb} ON audit_event
                BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END
            """)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.drop_table('announcement_tally')
    op.drop_table('legal_hold')
    op.drop_index('ix_link_failure_at', table_name='link_failure')
    op.drop_index('ix_link_failure_account_key', table_name='link_failure')
    op.drop_table('link_failure')
    with op.batch_alter_table('audit_event') as batch:
        batch.drop_index('ix_audit_event_actor_id')
        batch.drop_index('ix_audit_event_subject_id')
        batch.drop_constraint('fk_audit_event_subject_id_person', type_='foreignkey')
        batch.drop_column('subject_id')
    with op.batch_alter_table('person') as batch:
        batch.drop_column('erased_at')
