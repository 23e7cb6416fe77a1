"""Pulled studies, series and instances.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=True),
        sa.Column("patient_name", sa.String(), nullable=True),
        sa.Column("study_date", sa.String(), nullable=True),
        sa.Column("study_time", sa.String(), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("accession_number", sa.String(), nullable=True),
        sa.Column("modalities", sa.String(), nullable=True),
        sa.Column("remote_instance_count", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "study_uid"),
    )
    op.create_index(op.f("ix_study_integration_id"), "study", ["integration_id"], unique=False)
    op.create_index(op.f("ix_study_patient_id"), "study", ["patient_id"], unique=False)
    op.create_index(op.f("ix_study_patient_name"), "study", ["patient_name"], unique=False)
    op.create_index(op.f("ix_study_reconciled_at"), "study", ["reconciled_at"], unique=False)
    op.create_index(op.f("ix_study_study_date"), "study", ["study_date"], unique=False)
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("remote_instance_count", sa.Integer(), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "series_uid"),
    )
    op.create_index(op.f("ix_series_integration_id"), "series", ["integration_id"], unique=False)
    op.create_index(op.f("ix_series_study_id"), "series", ["study_id"], unique=False)
    op.create_table(
        "instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(), nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax", sa.String(), nullable=True),
        sa.Column("frames_bytes", sa.Integer(), nullable=False),
        sa.Column("metadata_bytes", sa.Integer(), nullable=False),
        sa.Column("files_path", sa.String(), nullable=True),
        sa.Column("thumbnail_path", sa.String(), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integration.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "sop_instance_uid"),
    )
    op.create_index(
        op.f("ix_instance_integration_id"), "instance", ["integration_id"], unique=False
    )
    op.create_index(op.f("ix_instance_series_id"), "instance", ["series_id"], unique=False)
    op.create_index(op.f("ix_instance_study_uid"), "instance", ["study_uid"], unique=False)
    op.create_table(
        "instancemetadata",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("dicom_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id"),
    )
