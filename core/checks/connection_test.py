"""Test connection: how many studies does the PACS hold for this patient?

The answer support staff see as a green box ("3 studies found") or a red box (what is wrong
and what to do). A patient without studies is green with 0: the connection works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.dicomweb import DicomwebClient, PacsError, exact_value
from core.dicomweb import dicom_json as dj
from core.errors import PacsbridgeError
from core.settings.model import IntegrationSettings
from core.settings.presets import get_preset
from core.settings.validation import settings_warnings

# Asked explicitly: Orthanc omits StudyDescription unless named (and ignores `all`).
SUMMARY_FIELDS = (
    dj.STUDY_DESCRIPTION,
    dj.NUMBER_OF_STUDY_RELATED_SERIES,
    dj.NUMBER_OF_STUDY_RELATED_INSTANCES,
)


@dataclass(frozen=True)
class StudySummary:
    study_uid: str
    patient_id: str | None
    patient_name: str | None
    study_date: str | None
    description: str | None
    modalities: list[str]
    series_count: int | None
    instance_count: int | None

    @classmethod
    def from_dicom_json(cls, obj: dict[str, Any]) -> StudySummary:
        return cls(
            study_uid=dj.text(obj, dj.STUDY_INSTANCE_UID) or "",
            patient_id=dj.text(obj, dj.PATIENT_ID),
            patient_name=dj.text(obj, dj.PATIENT_NAME),
            study_date=dj.text(obj, dj.STUDY_DATE),
            description=dj.text(obj, dj.STUDY_DESCRIPTION),
            modalities=[str(m) for m in dj.values(obj, dj.MODALITIES_IN_STUDY)],
            series_count=dj.integer(obj, dj.NUMBER_OF_STUDY_RELATED_SERIES),
            instance_count=dj.integer(obj, dj.NUMBER_OF_STUDY_RELATED_INSTANCES),
        )


@dataclass
class ConnectionTestResult:
    ok: bool
    patient_id: str
    studies: int | None = None
    truncated: bool = False
    error: str | None = None
    found: list[StudySummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def headline(self) -> str:
        if not self.ok:
            return f"Connection failed: {self.error}"
        count = f"{self.studies}+" if self.truncated else str(self.studies)
        noun = "study" if self.studies == 1 and not self.truncated else "studies"
        return f"{count} {noun} found for patient {self.patient_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "studies": self.studies,
            "truncated": self.truncated,
            "error": self.error,
            "warnings": self.warnings,
            "found": [asdict(s) for s in self.found],
        }


def run_connection_test(
    settings: IntegrationSettings, secret: str | None, patient_id: str
) -> ConnectionTestResult:
    """Search the PACS for the patient's studies; every failure becomes a red result."""
    patient_id = patient_id.strip()
    warnings = settings_warnings(settings)
    if exact_value(
        patient_id, server_decodes=get_preset(settings.preset).decodes_query
    ).needs_check:
        warnings.append(
            f"the patient ID {patient_id!r} cannot be sent to this server as it is (wildcard, "
            "separator or non-ASCII characters); it was matched exactly by checking each result"
        )
    try:
        with DicomwebClient(settings, secret) as client:
            result = client.search_studies(patient_id=patient_id, includefields=SUMMARY_FIELDS)
    except (PacsError, PacsbridgeError) as exc:
        return ConnectionTestResult(
            ok=False, patient_id=patient_id, error=exc.describe(), warnings=warnings
        )
    found = sorted(
        (StudySummary.from_dicom_json(m) for m in result.matches),
        key=lambda s: s.study_date or "",
        reverse=True,
    )
    return ConnectionTestResult(
        ok=True,
        patient_id=patient_id,
        studies=len(found),
        truncated=result.truncated,
        found=found,
        warnings=warnings + result.warnings,
    )
