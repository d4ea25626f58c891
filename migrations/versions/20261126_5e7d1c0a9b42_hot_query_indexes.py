"""indexes for the hot queries: the learner's look for due events reads only unsettled ones; a user's
profile reads their own rewards, newest first, past the default ones

Revision ID: 5e7d1c0a9b42
Revises: 154eda6dfd47
Create Date: 2026-11-26 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5e7d1c0a9b42'
down_revision = '154eda6dfd47'
branch_labels = None
depends_on = None

UNSETTLED = sa.text("settled_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_settled_at')
        batch_op.create_index('ix_events_unsettled', ['created_at'], unique=False,
                              sqlite_where=UNSETTLED, postgresql_where=UNSETTLED)
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_user_id')
        batch_op.create_index('ix_rewards_user_profile', ['user_id', 'is_default', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_user_profile')
        batch_op.create_index('ix_rewards_user_id', ['user_id'], unique=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_unsettled', sqlite_where=UNSETTLED, postgresql_where=UNSETTLED)
        batch_op.create_index('ix_events_settled_at', ['settled_at'], unique=False)
