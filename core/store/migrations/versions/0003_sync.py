"""Sync runs, errors, dead letters, requests, locks and health checks.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "syncrun",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=True),
        sa.Column(
            "scope", sa.Enum("INTEGRATION", "PATIENT", "STUDY", name="syncscope"), nullable=False
        ),
        sa.Column("scope_value", sa.String(), nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum("RUNNING", "SUCCESS", "PARTIAL", "FAILED", "INTERRUPTED", name="runstatus"),
            nullable=False,
        ),
        sa.Column("window_start", sa.String(), nullable=True),
        sa.Column("studies", sa.Integer(), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("instances_found", sa.Integer(), nullable=False),
        sa.Column("instances_pulled", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_syncrun_integration_id"), "syncrun", ["integration_id"], unique=False)
    op.create_index(op.f("ix_syncrun_started_at"), "syncrun", ["started_at"], unique=False)
    op.create_index(op.f("ix_syncrun_status"), "syncrun", ["status"], unique=False)
    op.create_table(
        "syncerror",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(), nullable=False),
        sa.Column("uid", sa.String(), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("hint", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["syncrun.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_syncerror_integration_id"), "syncerror", ["integration_id"], unique=False
    )
    op.create_index(op.f("ix_syncerror_run_id"), "syncerror", ["run_id"], unique=False)
    op.create_table(
        "deadletter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(), nullable=False),
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("study_uid", sa.String(), nullable=True),
        sa.Column("series_uid", sa.String(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_url", sa.String(), nullable=True),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "item", "uid"),
    )
    op.create_index(
        op.f("ix_deadletter_integration_id"), "deadletter", ["integration_id"], unique=False
    )
    op.create_table(
        "syncrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column(
            "scope", sa.Enum("INTEGRATION", "PATIENT", "STUDY", name="syncscope"), nullable=False
        ),
        sa.Column("scope_value", sa.String(), nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum("QUEUED", "CLAIMED", "DONE", "FAILED", name="requeststatus"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_syncrequest_integration_id"), "syncrequest", ["integration_id"], unique=False
    )
    op.create_index(
        op.f("ix_syncrequest_requested_at"), "syncrequest", ["requested_at"], unique=False
    )
    op.create_index(op.f("ix_syncrequest_status"), "syncrequest", ["status"], unique=False)
    op.create_table(
        "synclock",
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id"),
    )
    op.create_table(
        "healthcheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("elapsed_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "checked_at"),
    )
    op.create_index(op.f("ix_healthcheck_checked_at"), "healthcheck", ["checked_at"], unique=False)
    op.create_index(
        op.f("ix_healthcheck_integration_id"), "healthcheck", ["integration_id"], unique=False
    )
