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
    pass


def downgrade() -> None:
    pass
