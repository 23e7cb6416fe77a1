"""A patient's measurements in forms other systems read: CSV, and FHIR R4 Observations.

One row, or one Observation, per reported value (the value a clinician reads for each
measurement, see core.sr), follicle diameters derived from a volume included and marked.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from enum import StrEnum
from typing import Any

from core.measurements import patient_measurements
from core.patient_series import study_day
from core.store import Measurement

CSV_FIELDS = (
    "patient_id",
    "study_uid",
    "study_date",
    "kind",
    "value",
    "unit",
    "laterality",
    "group",
    "derivation",
    "concept_code",
    "concept_scheme",
    "concept_meaning",
    "sop_instance_uid",
)

# Coding scheme designators of DICOM (PS3.16 Section 8) → the code system URIs of FHIR.
CODE_SYSTEMS = {
    "LN": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
}
UCUM = "http://unitsofmeasure.org"
DICOM_UID = "urn:dicom:uid"
# Laterality here is always an ovary's (follicles, follicle counts, ovary sizes).
OVARY_BY_SIDE = {
    "left": ("43981004", "Structure of left ovary"),
    "right": ("20837000", "Structure of right ovary"),
}
_ENTRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pacsbridge:measurement")


class ExportFormat(StrEnum):
    CSV = "csv"
    FHIR = "fhir"


def export_measurements(name: str, patient_id: str, form: ExportFormat) -> str:
    """The patient's reported measurements as CSV text or a FHIR R4 Bundle (JSON text)."""
    _, rows = patient_measurements(name, patient_id)
    if form is ExportFormat.CSV:
        return measurements_csv(rows)
    return json.dumps(fhir_bundle(rows), indent=2, ensure_ascii=False) + "\n"


def measurements_csv(rows: list[Measurement]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        shown = {field: getattr(row, field) for field in CSV_FIELDS}
        shown["study_date"] = _iso_date(row.study_date)
        writer.writerow(shown)
    return out.getvalue()


def fhir_bundle(rows: list[Measurement]) -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection) of one Observation per row."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{_entry_id(row)}", "resource": observation(row)} for row in rows
        ],
    }


def observation(row: Measurement) -> dict[str, Any]:
    """One reported value as a FHIR R4 Observation, coded with the report's own concept."""
    coding: dict[str, Any] = {"code": row.concept_code, "display": row.concept_meaning}
    if system := CODE_SYSTEMS.get(row.concept_scheme):
        coding["system"] = system
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                    }
                ]
            }
        ],
        "code": {"coding": [coding], "text": row.concept_meaning},
        "subject": {"type": "Patient", "identifier": {"value": row.patient_id}},
        "derivedFrom": [
            {
                "type": "DocumentReference",
                "identifier": {"system": DICOM_UID, "value": f"urn:oid:{row.sop_instance_uid}"},
                "display": "DICOM SR (SOP Instance UID)",
            },
            {
                "type": "ImagingStudy",
                "identifier": {"system": DICOM_UID, "value": f"urn:oid:{row.study_uid}"},
            },
        ],
        "valueQuantity": _quantity(row),
    }
    if date := _iso_date(row.study_date):
        resource["effectiveDateTime"] = date
    if row.laterality in OVARY_BY_SIDE:
        code, display = OVARY_BY_SIDE[row.laterality]
        resource["bodySite"] = {
            "coding": [{"system": CODE_SYSTEMS["SCT"], "code": code, "display": display}],
            "text": f"{row.laterality} ovary",
        }
    if row.derivation:
        resource["method"] = {"text": row.derivation}
    if row.group:
        resource["note"] = [{"text": f"group {row.group}"}]
    return resource


def _quantity(row: Measurement) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": row.value}
    if row.unit:
        quantity |= {"unit": row.unit, "system": UCUM, "code": row.unit}
    return quantity


def _entry_id(row: Measurement) -> uuid.UUID:
    """The same value exported twice gets the same entry URL."""
    name = "/".join(
        str(part)
        for part in (row.sop_instance_uid, row.position, row.kind, row.laterality, row.group)
    )
    return uuid.uuid5(_ENTRY_NAMESPACE, name)


def _iso_date(study_date: str | None) -> str | None:
    day = study_day(study_date)
    return day.isoformat() if day else None
