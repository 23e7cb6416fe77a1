"""What was pulled from a clinic's PACS: studies, series, instances and instance metadata.

UIDs are unique per integration (two clinics may hold the same study). An Instance row is
written only once the instance is complete — metadata stored, every frame file renamed into
place, thumbnail made — in one transaction, so "row exists" means "never fetch again".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store._models import utcnow


def _integration_fk() -> int:
    return Field(
        sa_column=Column(
            Integer, ForeignKey("integration.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )


class Study(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("integration_id", "study_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    study_uid: str = Field(max_length=64)
    patient_id: str | None = Field(default=None, index=True)
    patient_name: str | None = Field(default=None, index=True)
    study_date: str | None = Field(default=None, index=True)  # DICOM DA, YYYYMMDD
    study_time: str | None = None
    description: str | None = None
    accession_number: str | None = None
    modalities: str | None = None  # ModalitiesInStudy joined with "\"
    # NumberOfStudyRelatedInstances as the PACS last reported it: equal to the number of
    # pulled instances means nothing to fetch.
    remote_instance_count: int | None = None
    first_seen_at: datetime = Field(default_factory=utcnow)
    reconciled_at: datetime | None = Field(default=None, index=True)
    pulled_at: datetime | None = None


class Series(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("integration_id", "series_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    study_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("study.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    study_uid: str = Field(max_length=64)
    series_uid: str = Field(max_length=64)
    modality: str | None = None
    description: str | None = None
    series_number: int | None = None
    remote_instance_count: int | None = None
    pulled_at: datetime | None = None


class Instance(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("integration_id", "sop_instance_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    series_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("series.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    study_uid: str = Field(max_length=64, index=True)
    series_uid: str = Field(max_length=64)
    sop_instance_uid: str = Field(max_length=64)
    sop_class_uid: str | None = None
    instance_number: int | None = None
    number_of_frames: int | None = None
    rows: int | None = None
    columns: int | None = None
    transfer_syntax: str | None = None
    frames_bytes: int = 0
    metadata_bytes: int = 0
    # Relative to $PACSBRIDGE_HOME, so the state folder can move.
    files_path: str | None = None
    thumbnail_path: str | None = None
    pulled_at: datetime = Field(default_factory=utcnow)


class InstanceMetadata(SQLModel, table=True):
    """The instance's WADO-RS metadata (DICOM JSON), kept so SR measurements can be derived
    again after a mapping change without asking the PACS."""

    instance_id: int = Field(
        sa_column=Column(Integer, ForeignKey("instance.id", ondelete="CASCADE"), primary_key=True)
    )
    dicom_json: str = Field(sa_column=Column(Text, nullable=False))
