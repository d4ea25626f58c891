"""unsettled events index: the learner's look for due events reads only unsettled ones

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


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_unsettled', sqlite_where=UNSETTLED, postgresql_where=UNSETTLED)
        batch_op.create_index('ix_events_settled_at', ['settled_at'], unique=False)
