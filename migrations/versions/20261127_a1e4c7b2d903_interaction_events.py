"""interaction events and windowed activity

Revision ID: a1e4c7b2d903
Revises: 7d2e4f6a8b10
Create Date: 2026-11-27 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'a1e4c7b2d903'
down_revision = '7d2e4f6a8b10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('interactions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('item_id', sa.String(length=256), nullable=True),
    sa.Column('event_id', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interactions_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_interactions_item_ts', ['item_id', 'ts'], unique=False)
        batch_op.create_index('ix_interactions_user_ts', ['user_id', 'ts'], unique=False)

    op.create_table('activity_minutes',
    sa.Column('subject_type', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.String(length=256), nullable=False),
    sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('subject_type', 'subject_id', 'minute', 'event_type', 'category')
    )


def downgrade() -> None:
    op.drop_table('activity_minutes')
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_index('ix_interactions_user_ts')
        batch_op.drop_index('ix_interactions_item_ts')
        batch_op.drop_index(batch_op.f('ix_interactions_event_id'))
    op.drop_table('interactions')
