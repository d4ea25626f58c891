"""retraining, releases and shadow scores

Revision ID: d4b7f0e5a236
Revises: c3a6e9d4f125
Create Date: 2026-11-27 14:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'd4b7f0e5a236'
down_revision = 'c3a6e9d4f125'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_version', sa.String(length=64), nullable=True),
    sa.Column('trigger', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('grid', sa.JSON(), nullable=False),
    sa.Column('estimates', sa.JSON(), nullable=False),
    sa.Column('kpis', sa.JSON(), nullable=False),
    sa.Column('limits', sa.JSON(), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('model_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_releases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_releases_started_at'), ['started_at'], unique=False)

    op.create_table('shadow_decisions',
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=256), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], ),
    sa.PrimaryKeyConstraint('version', 'event_id')
    )

    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.create_index('ix_interactions_type_ts', ['type', 'ts'], unique=False)

    with op.batch_alter_table('activity_minutes', schema=None) as batch_op:
        batch_op.create_index('ix_activity_minutes_kind_minute', ['subject_type', 'minute'], unique=False)

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trigger', sa.String(length=128), nullable=False, server_default=''))

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_version', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('learned_from_reward_id', sa.BigInteger(), nullable=False, server_default='0'))

    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=32), nullable=False, server_default='poll.response'))



def downgrade() -> None:
    with op.batch_alter_table('activity_minutes', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_minutes_kind_minute')

    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_index('ix_interactions_type_ts')

    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('topic')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('learned_from_reward_id')
        batch_op.drop_column('parent_version')

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('trigger')

    op.drop_table('shadow_decisions')
    with op.batch_alter_table('model_releases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_releases_started_at'))

    op.drop_table('model_releases')
    op.drop_table('model_cards')
