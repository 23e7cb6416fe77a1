"""Measurements counted per sync run: syncrun.measurements.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column(
        "syncrun", sa.Column("measurements", sa.Integer(), nullable=False, server_default="0")
    )
