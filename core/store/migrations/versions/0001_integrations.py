"""Integrations: one clinic's PACS each.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "integration",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("base_uri", sa.String(), nullable=False),
        sa.Column("preset", sa.String(), nullable=False),
        sa.Column(
            "auth_kind",
            sa.Enum("NONE", "BASIC", "BEARER", "OAUTH2", name="authkind"),
            nullable=False,
        ),
        sa.Column("username", sa.String(), nullable=True),
        sa.Column("token_url", sa.String(), nullable=True),
        sa.Column("scope", sa.String(), nullable=True),
        sa.Column("studies_template", sa.String(), nullable=False),
        sa.Column("series_template", sa.String(), nullable=False),
        sa.Column("instances_template", sa.String(), nullable=False),
        sa.Column("metadata_template", sa.String(), nullable=False),
        sa.Column("frames_template", sa.String(), nullable=False),
        sa.Column("ca_bundle", sa.String(), nullable=True),
        sa.Column("allow_insecure_http", sa.Boolean(), nullable=False),
        sa.Column("connect_timeout_s", sa.Float(), nullable=False),
        sa.Column("read_timeout_s", sa.Float(), nullable=False),
        sa.Column("max_concurrent_requests", sa.Integer(), nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=False),
        sa.Column("schedule_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_ciphertext", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_integration_name"), "integration", ["name"], unique=True)
