"""SR measurements and code mappings.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "measurement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=True),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("series_uid", sa.String(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(), nullable=False),
        sa.Column("study_date", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("concept_code", sa.String(), nullable=False),
        sa.Column("concept_scheme", sa.String(), nullable=False),
        sa.Column("concept_meaning", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("laterality", sa.String(), nullable=True),
        sa.Column("group", sa.String(), nullable=True),
        sa.Column("fetus_id", sa.String(), nullable=True),
        sa.Column("derivation", sa.String(), nullable=True),
        sa.Column("selection", sa.String(), nullable=True),
        sa.Column("section", sa.String(), nullable=True),
        sa.Column("finding_site", sa.String(), nullable=True),
        sa.Column("context_path", sa.String(), nullable=False),
        sa.Column("vendor_private", sa.Boolean(), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("reported_by", sa.String(), nullable=True),
        sa.Column("computed", sa.Boolean(), nullable=False),
        sa.Column("qualifier", sa.String(), nullable=True),
        sa.Column("source_unit", sa.String(), nullable=True),
        sa.Column("position", sa.String(), nullable=True),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_measurement_instance",
        "measurement",
        ["integration_id", "sop_instance_uid"],
        unique=False,
    )
    op.create_index(
        "ix_measurement_patient",
        "measurement",
        ["integration_id", "patient_id", "kind"],
        unique=False,
    )
    op.create_index(
        "ix_measurement_study", "measurement", ["integration_id", "study_uid"], unique=False
    )
    op.create_table(
        "codemapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "scheme", "code"),
    )
    op.create_index(
        op.f("ix_codemapping_integration_id"), "codemapping", ["integration_id"], unique=False
    )
