"""How far back scheduled runs search again: integration.lookback_days.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column(
        "integration",
        sa.Column("lookback_days", sa.Integer(), nullable=False, server_default="3"),
    )
