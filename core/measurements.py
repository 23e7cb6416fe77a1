"""SR measurements in the store: extraction into rows, re-extraction, queries, code mappings.

The sync extracts rows as SR instances arrive; `reextract` derives them again from the stored
metadata (after a mapping change) without asking the PACS. Either way an SR's rows are
replaced as a whole in one transaction: never duplicated, never half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from core import store
from core.dicomweb.dicom_json import CollectorPause, parse_text
from core.errors import InvalidInput, UnknownPatient
from core.integrations import get_integration
from core.sr import KIND_TABLE, OTHER, extract_measurements
from core.sr import CodeMapping as CodeMap
from core.store import CodeMapping, Instance, InstanceMetadata, Integration, Measurement, Study
from core.uids import check_uid

SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
KNOWN_KINDS = frozenset(rule.kind for rule in KIND_TABLE)
REEXTRACT_BATCH = 200


def is_sr(sop_class_uid: str | None) -> bool:
    return bool(sop_class_uid) and sop_class_uid.startswith(SR_CLASS_PREFIX)  # type: ignore[union-attr]


# --- code mappings --------------------------------------------------------------------------


def code_map(integration_id: int) -> CodeMap:
    """The integration's mappings in the form the extractor takes."""
    with store.session() as db:
        rows = db.exec(
            select(CodeMapping).where(CodeMapping.integration_id == integration_id)
        ).all()
    return {(row.scheme, row.code): (row.kind, row.unit) for row in rows}


def list_mappings(name: str) -> list[CodeMapping]:
    integration = get_integration(name)
    with store.session() as db:
        return list(
            db.exec(
                select(CodeMapping)
                .where(CodeMapping.integration_id == integration.id)
                .order_by(CodeMapping.scheme, CodeMapping.code)
            ).all()
        )


def set_mapping(
    name: str, scheme: str, code: str, kind: str, unit: str, note: str | None = None
) -> CodeMapping:
    """Map a private (scheme, code) to a kind and the unit the device's values are in."""
    scheme, code, kind, unit = scheme.strip(), code.strip(), kind.strip(), unit.strip()
    if not scheme or not code:
        raise InvalidInput(
            "a mapping needs the coding scheme and the code value", hint="E.g. 99VENDOR VEN-12."
        )
    if kind not in KNOWN_KINDS:
        raise InvalidInput(
            f"unknown measurement kind {kind!r}",
            hint="Use one of: " + ", ".join(sorted(KNOWN_KINDS)),
        )
    if not unit:
        raise InvalidInput("a mapping needs the unit the device sends (UCUM, e.g. mm, cm, ml)")
    integration = get_integration(name)
    with store.session() as db:
        mapping = db.exec(
            select(CodeMapping).where(
                CodeMapping.integration_id == integration.id,
                CodeMapping.scheme == scheme,
                CodeMapping.code == code,
            )
        ).first() or CodeMapping(
            integration_id=integration.id, scheme=scheme, code=code, kind=kind, unit=unit
        )
        mapping.kind, mapping.unit, mapping.note = kind, unit, note
        mapping.updated_at = store.utcnow()
        db.add(mapping)
    return mapping


def remove_mapping(name: str, scheme: str, code: str) -> bool:
    integration = get_integration(name)
    with store.session() as db:
        removed = db.execute(
            delete(CodeMapping).where(
                CodeMapping.integration_id == integration.id,
                CodeMapping.scheme == scheme,
                CodeMapping.code == code,
            )
        )
        return removed.rowcount > 0


# --- extraction -----------------------------------------------------------------------------


def measurement_rows(
    integration_id: int, metadata: dict[str, Any], mapping: CodeMap, study_date: str | None = None
) -> list[Measurement]:
    """The rows of one SR instance's metadata (DICOM JSON), ready to store."""
    result = extract_measurements(metadata, mapping)
    return [
        Measurement(
            integration_id=integration_id,
            patient_id=row.patient_id,
            study_uid=row.study_uid,
            series_uid=row.series_uid,
            sop_instance_uid=row.sop_instance_uid,
            study_date=study_date,
            kind=row.kind,
            concept_code=row.concept_code,
            concept_scheme=row.concept_scheme,
            concept_meaning=row.concept_meaning,
            value=row.value,
            unit=row.unit,
            laterality=row.laterality,
            group=row.group,
            fetus_id=row.fetus_id,
            derivation=row.derivation,
            selection=row.selection,
            section=row.section,
            finding_site=row.finding_site,
            context_path=row.context_path,
            vendor_private=row.vendor_private,
            reported=row.reported,
            reported_by=row.reported_by,
            computed=row.computed,
            qualifier=row.qualifier,
            source_unit=row.source_unit,
            position=row.position,
        )
        for row in result.rows
    ]


def replace_rows(
    db: Session, integration_id: int, sop_instance_uid: str, rows: Iterable[Measurement]
) -> int:
    """Within the caller's transaction: this SR's rows, and only these."""
    db.execute(
        delete(Measurement).where(
            Measurement.integration_id == integration_id,
            Measurement.sop_instance_uid == sop_instance_uid,
        )
    )
    count = 0
    for row in rows:
        db.add(row)
        count += 1
    return count


@dataclass
class ReextractOutcome:
    instances: int = 0
    rows: int = 0


def reextract(name: str, progress: Callable[[int, int], None] | None = None) -> ReextractOutcome:
    """Derive every SR's rows again from stored metadata; the PACS is not asked."""
    integration = get_integration(name)
    assert integration.id is not None
    mapping = code_map(integration.id)
    with store.session() as db:
        sr_ids = list(
            db.exec(
                select(Instance.id)
                .where(
                    Instance.integration_id == integration.id,
                    col(Instance.sop_class_uid).startswith(SR_CLASS_PREFIX),
                )
                .order_by(Instance.id)
            ).all()
        )
    outcome = ReextractOutcome()
    for start in range(0, len(sr_ids), REEXTRACT_BATCH):
        chunk = sr_ids[start : start + REEXTRACT_BATCH]
        with store.session() as db:
            rows = db.exec(
                select(Instance.sop_instance_uid, InstanceMetadata.dicom_json, Study.study_date)
                .join(InstanceMetadata, InstanceMetadata.instance_id == Instance.id)  # type: ignore[arg-type]
                .join(
                    Study,
                    (Study.integration_id == Instance.integration_id)
                    & (Study.study_uid == Instance.study_uid),  # type: ignore[arg-type]
                )
                .where(col(Instance.id).in_(chunk))
            ).all()
            for sop_uid, text, study_date in rows:
                with CollectorPause():  # one report's JSON tree, parsed and read
                    derived = measurement_rows(
                        integration.id, parse_text(text), mapping, study_date
                    )
                outcome.rows += replace_rows(db, integration.id, sop_uid, derived)
                outcome.instances += 1
        if progress:
            progress(outcome.instances, len(sr_ids))
    return outcome


def stored_sr_metadata(name: str, study_uid: str) -> list[dict[str, Any]]:
    """The stored metadata (DICOM JSON) of a pulled study's SR instances."""
    integration = get_integration(name)
    with store.session() as db:
        texts = db.exec(
            select(InstanceMetadata.dicom_json)
            .join(Instance, InstanceMetadata.instance_id == Instance.id)  # type: ignore[arg-type]
            .where(
                Instance.integration_id == integration.id,
                Instance.study_uid == check_uid(study_uid, what="Study Instance UID"),
                col(Instance.sop_class_uid).startswith(SR_CLASS_PREFIX),
            )
            .order_by(Instance.id)
        ).all()
    return [parse_text(text) for text in texts]


# --- queries --------------------------------------------------------------------------------


def query_measurements(
    name: str,
    *,
    patient_id: str | None = None,
    study_uid: str | None = None,
    kind: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Measurement]:
    integration = get_integration(name)
    query = select(Measurement).where(Measurement.integration_id == integration.id)
    if patient_id:
        query = query.where(Measurement.patient_id == patient_id)
    if study_uid:
        query = query.where(
            Measurement.study_uid == check_uid(study_uid, what="Study Instance UID")
        )
    if kind:
        if kind not in KNOWN_KINDS | {OTHER}:
            raise InvalidInput(
                f"unknown measurement kind {kind!r}",
                hint="Use one of: " + ", ".join(sorted(KNOWN_KINDS)),
            )
        query = query.where(Measurement.kind == kind)
    query = (
        query.order_by(
            col(Measurement.study_date),
            Measurement.sop_instance_uid,
            Measurement.position,
            Measurement.id,
        )
        .limit(limit)
        .offset(offset)
    )
    with store.session() as db:
        return list(db.exec(query).all())


def patient_measurements(
    name: str, patient_id: str, kinds: Collection[str] | None = None
) -> tuple[Integration, list[Measurement]]:
    """The integration and the reported values of one patient (of `kinds`, or all), oldest
    study first; UnknownPatient when nothing of the patient was pulled."""
    patient_id = patient_id.strip()
    if not patient_id:
        raise InvalidInput("the patient ID is empty")
    integration = get_integration(name)
    query = select(Measurement).where(
        Measurement.integration_id == integration.id,
        Measurement.patient_id == patient_id,
        Measurement.reported == True,  # noqa: E712
        col(Measurement.value).is_not(None),
    )
    if kinds is not None:
        query = query.where(col(Measurement.kind).in_(kinds))
    with store.session() as db:
        rows = list(
            db.exec(
                query.order_by(
                    col(Measurement.study_date),
                    Measurement.sop_instance_uid,
                    Measurement.position,
                    Measurement.id,
                )
            ).all()
        )
        pulled = db.exec(
            select(func.count())
            .select_from(Study)
            .where(Study.integration_id == integration.id, Study.patient_id == patient_id)
        ).one()
    if not pulled and not rows:
        raise UnknownPatient(
            f"no pulled study of patient {patient_id} in {name}",
            hint=f"Check the ID, or pull the patient: pacsbridge sync {name} --patient-id {patient_id}",
        )
    return integration, rows
