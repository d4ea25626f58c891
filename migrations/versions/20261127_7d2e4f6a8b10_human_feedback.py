"""human feedback: polls and their answers, webhooks and their outbox, reviewer queues with the two that ship
(anomalies, labeling), the append-only audit log, end users excluded from learning, shared rate-limit counters

Revision ID: 7d2e4f6a8b10
Revises: 4b7e9d2c1a06
Create Date: 2026-11-27 11:10:00
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = '7d2e4f6a8b10'
down_revision = '4b7e9d2c1a06'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=256), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('polls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_token', sa.String(length=32), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=True),
    sa.Column('target', sa.String(length=8), nullable=False),
    sa.Column('target_item_id', sa.String(length=256), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sample_share', sa.Float(), nullable=False),
    sa.Column('allowed_origins', sa.JSON(), nullable=False),
    sa.Column('allow_multiple', sa.Boolean(), nullable=False),
    sa.Column('recontact_seconds', sa.Integer(), nullable=False),
    sa.Column('reward_map', sa.JSON(), nullable=True),
    sa.Column('uncertain_only', sa.Boolean(), nullable=False),
    sa.Column('max_probability', sa.Float(), nullable=True),
    sa.Column('max_margin', sa.Float(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_polls_public_token'), ['public_token'], unique=True)

    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('review_queues',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('decisions_required', sa.Integer(), nullable=False),
    sa.Column('lease_seconds', sa.Integer(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('poll_asks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('respondent_id', sa.String(length=256), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=True),
    sa.Column('uncertain', sa.Boolean(), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('poll_asks', schema=None) as batch_op:
        batch_op.create_index('ix_poll_asks_poll_respondent', ['poll_id', 'respondent_id', 'asked_at'], unique=False)
        batch_op.create_index('ix_poll_asks_respondent', ['respondent_id', 'asked_at'], unique=False)

    op.create_table('poll_responses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('respondent_id', sa.String(length=256), nullable=False),
    sa.Column('once_key', sa.String(length=256), nullable=True),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=True),
    sa.Column('item_id', sa.String(length=256), nullable=True),
    sa.Column('uncertain', sa.Boolean(), nullable=False),
    sa.Column('reward_value', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('poll_id', 'once_key', name='uq_poll_responses_once')
    )
    with op.batch_alter_table('poll_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_poll_responses_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_poll_responses_poll', ['poll_id', 'id'], unique=False)

    op.create_table('review_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('queue', sa.String(length=32), nullable=False),
    sa.Column('subject_type', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.String(length=256), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('evidence_key', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.Integer(), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision', sa.String(length=256), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['claimed_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['queue'], ['review_queues.name'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('queue', 'subject_type', 'subject_id', 'evidence_key', name='uq_review_tasks_subject_evidence')
    )
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_review_tasks_next', ['queue', 'status', 'priority', 'id'], unique=False)

    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=True),
    sa.Column('allow_private', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('excluded_users',
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('excluded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['review_tasks.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('review_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=256), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['review_tasks.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id', 'user_id', name='uq_review_decisions_task_user')
    )
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_decisions_task_id'), ['task_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_due', ['next_attempt_at'], unique=False, sqlite_where=sa.text('delivered_at IS NULL AND failed_at IS NULL'), postgresql_where=sa.text('delivered_at IS NULL AND failed_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_webhook_id'), ['webhook_id'], unique=False)

    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excluded', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.alter_column('excluded', server_default=None)

    queues = sa.table(
        'review_queues',
        sa.column('name', sa.String), sa.column('description', sa.String), sa.column('decisions_required', sa.Integer),
        sa.column('lease_seconds', sa.Integer), sa.column('labels', sa.JSON), sa.column('created_at', sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC).replace(tzinfo=None) if op.get_bind().dialect.name == 'sqlite' else datetime.now(UTC)
    op.bulk_insert(queues, [
        {'name': 'anomalies', 'description': 'Behaviour the scans flagged: confirm (fraud, a real problem) or dismiss.',
         'decisions_required': 1, 'lease_seconds': 900, 'labels': None, 'created_at': now},
        {'name': 'labeling', 'description': 'Recommendations the model was unsure of: label how relevant the item is.',
         'decisions_required': 1, 'lease_seconds': 900, 'labels': ['relevant', 'somewhat', 'irrelevant'], 'created_at': now},
    ])
    _forbid_audit_edits()


def _forbid_audit_edits() -> None:
    """Nobody edits the audit log: the database refuses UPDATE and DELETE on it."""
    if op.get_bind().dialect.name == 'sqlite':
        for verb in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )



def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('excluded')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_webhook_id'))
        batch_op.drop_index('ix_webhook_deliveries_due', sqlite_where=sa.text('delivered_at IS NULL AND failed_at IS NULL'), postgresql_where=sa.text('delivered_at IS NULL AND failed_at IS NULL'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_decisions_task_id'))

    op.drop_table('review_decisions')
    op.drop_table('excluded_users')
    op.drop_table('webhooks')
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_review_tasks_next')

    op.drop_table('review_tasks')
    with op.batch_alter_table('poll_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_poll_responses_poll')
        batch_op.drop_index(batch_op.f('ix_poll_responses_event_id'))

    op.drop_table('poll_responses')
    with op.batch_alter_table('poll_asks', schema=None) as batch_op:
        batch_op.drop_index('ix_poll_asks_respondent')
        batch_op.drop_index('ix_poll_asks_poll_respondent')

    op.drop_table('poll_asks')
    op.drop_table('review_queues')
    op.drop_table('rate_limits')
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_polls_public_token'))

    op.drop_table('polls')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    if op.get_bind().dialect.name != 'sqlite':
        op.execute('DROP FUNCTION audit_log_append_only() CASCADE')
    op.drop_table('audit_log')
