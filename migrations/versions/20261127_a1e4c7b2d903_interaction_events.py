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
    pass


def downgrade() -> None:
    pass
