"""rewards learned once per slot: who wrote a reward (client or the learner's settlement), late rewards, rewards
set aside after failing to learn; rollback requests the learner carries out; the learner's heartbeat

Revision ID: 8c3f2a1d7e55
Revises: 5e7d1c0a9b42
Create Date: 2026-11-27 09:30:00
"""
from alembic import op
import sqlalchemy as sa



revision = '8c3f2a1d7e55'
down_revision = '5e7d1c0a9b42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='client'))
        batch_op.add_column(sa.Column('late', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('learn_error', sa.Text(), nullable=True))
    # The learner's default rewards were stored under the key "default", which a client could also send.
    op.execute("UPDATE rewards SET source = 'settlement', reward_key = '' WHERE is_default")
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_constraint('uq_rewards_event_item_key', type_='unique')
        batch_op.create_unique_constraint('uq_rewards_event_item_source_key', ['event_id', 'item_id', 'source', 'reward_key'])
        batch_op.drop_index('ix_rewards_user_profile')
        batch_op.create_index('ix_rewards_user_profile', ['user_id', 'source', 'id'], unique=False)
        batch_op.alter_column('source', server_default=None)
        batch_op.alter_column('late', server_default=None)
    deferred_unsettled = sa.text("deferred AND settled_at IS NULL")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_deferred_unsettled', ['activated_at'], unique=False,
                              sqlite_where=deferred_unsettled, postgresql_where=deferred_unsettled)
    op.create_table(
        'model_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'learner_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_reward_id', sa.BigInteger(), nullable=False),
        sa.Column('model_version', sa.String(length=64), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('learner_state')
    op.drop_table('model_requests')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_deferred_unsettled')
    op.execute("UPDATE rewards SET reward_key = 'default' WHERE source = 'settlement'")
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_user_profile')
        batch_op.create_index('ix_rewards_user_profile', ['user_id', 'is_default', 'id'], unique=False)
        batch_op.drop_constraint('uq_rewards_event_item_source_key', type_='unique')
        batch_op.create_unique_constraint('uq_rewards_event_item_key', ['event_id', 'item_id', 'reward_key'])
        batch_op.drop_column('learn_error')
        batch_op.drop_column('late')
        batch_op.drop_column('source')
