"""The largest search or metadata answer accepted from an integration's PACS.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.add_column(
        "integration",
        sa.Column("max_response_mb", sa.Integer(), nullable=False, server_default="64"),
    )
