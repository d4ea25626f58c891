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
    pass


def downgrade() -> None:
    pass
