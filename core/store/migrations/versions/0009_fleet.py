"""The fleet: the shared timetable workers claim from, the workers themselves, and which
worker holds an integration's lock.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("synclock", sa.Column("worker", sa.String(), nullable=True))
    op.create_table(
        "syncschedule",
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_health_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id"),
    )
    op.create_index("ix_syncschedule_next_sync_at", "syncschedule", ["next_sync_at"])
    op.create_index("ix_syncschedule_next_health_at", "syncschedule", ["next_health_at"])
    op.create_table(
        "worker",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_index("ix_worker_heartbeat_at", "worker", ["heartbeat_at"])
