"""monitoring: alerts, KPI snapshots, drift reports

Revision ID: b2f5d8c3e014
Revises: a1e4c7b2d903
Create Date: 2026-11-27 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b2f5d8c3e014'
down_revision = 'a1e4c7b2d903'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=256), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('review_task_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_alerts_open', ['resolved_at', 'key'], unique=False)

    op.create_table('kpi_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('colour', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kpi_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_snapshots_series', ['name', 'model_version', 'at'], unique=False)

    op.create_table('drift_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('feature', sa.String(length=128), nullable=False),
    sa.Column('psi', sa.Float(), nullable=True),
    sa.Column('ks', sa.Float(), nullable=True),
    sa.Column('ks_p', sa.Float(), nullable=True),
    sa.Column('colour', sa.String(length=16), nullable=False),
    sa.Column('reference_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference_n', sa.Integer(), nullable=False),
    sa.Column('current_n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('drift_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_reports_at'), ['at'], unique=False)
        batch_op.create_index('ix_drift_reports_feature', ['feature', 'at'], unique=False)


def downgrade() -> None:
    op.drop_table('drift_reports')
    op.drop_table('kpi_snapshots')
    op.drop_table('alerts')
