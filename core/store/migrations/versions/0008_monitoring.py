"""Stimulation monitoring settings per integration: the gap that starts a new cycle, the
follicle size thresholds counted, and the trigger criterion.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.add_column(
        "integration",
        sa.Column("cycle_gap_days", sa.Integer(), nullable=False, server_default="10"),
    )
    op.add_column(
        "integration",
        sa.Column(
            "follicle_thresholds_mm",
            sa.String(),
            nullable=False,
            server_default="10,12,14,16,18",
        ),
    )
    op.add_column(
        "integration",
        sa.Column("trigger_follicle_count", sa.Integer(), nullable=False, server_default="3"),
    )
    op.add_column(
        "integration",
        sa.Column("trigger_diameter_mm", sa.Float(), nullable=False, server_default="17.0"),
    )
