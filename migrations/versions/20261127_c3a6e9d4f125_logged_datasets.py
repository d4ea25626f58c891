"""logged datasets imported from other systems

Revision ID: c3a6e9d4f125
Revises: b2f5d8c3e014
Create Date: 2026-11-27 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'c3a6e9d4f125'
down_revision = 'b2f5d8c3e014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('dataset_rows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=True),
    sa.Column('action', sa.String(length=256), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('reward', sa.Float(), nullable=False),
    sa.Column('propensity', sa.Float(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dataset_rows', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_rows_dataset_line', ['dataset_id', 'line'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dataset_rows', schema=None) as batch_op:
        batch_op.drop_index('ix_dataset_rows_dataset_line')
    op.drop_table('dataset_rows')
    op.drop_table('datasets')
