"""SR measurements as normalized rows, and the per-integration private-code mappings.

Rows are derived data: each SR instance's rows are replaced as a whole whenever it is
(re-)extracted, so they never duplicate and a mapping change is one `reextract` away.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store._models import utcnow


class Measurement(SQLModel, table=True):
    __table_args__ = (
        Index("ix_measurement_patient", "integration_id", "patient_id", "kind"),
        Index("ix_measurement_study", "integration_id", "study_uid"),
        Index("ix_measurement_instance", "integration_id", "sop_instance_uid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = Field(
        sa_column=Column(Integer, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False)
    )
    patient_id: str | None = None
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    study_date: str | None = None
    kind: str
    concept_code: str
    concept_scheme: str
    concept_meaning: str
    value: float | None = None
    unit: str | None = None
    laterality: str | None = None
    group: str | None = None
    fetus_id: str | None = None
    derivation: str | None = None
    selection: str | None = None
    section: str | None = None
    finding_site: str | None = None
    context_path: str = ""
    vendor_private: bool = False
    reported: bool = False
    reported_by: str | None = None
    computed: bool = False
    qualifier: str | None = None
    source_unit: str | None = None
    position: str | None = None
    extracted_at: datetime = Field(default_factory=utcnow)


class CodeMapping(SQLModel, table=True):
    """Turns a vendor's private (scheme, code) into a known kind and unit, per integration."""

    __table_args__ = (UniqueConstraint("integration_id", "scheme", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    scheme: str
    code: str
    kind: str
    unit: str
    note: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
