"""The sync's writes of pulled data: studies and series upserted by UID, complete instances
stored in batches, in short transactions with nothing half-written.

Runs in the sync's main thread only (the pull threads do HTTP and files), so SQLite sees one
writer per process and the dashboard can read between transactions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core import store
from core.dicomweb import dicom_json as dj
from core.store import Instance, InstanceMetadata, Measurement, Series, Study, utcnow


@dataclass
class PulledInstance:
    """What a pull thread hands back for the main thread to store."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    metadata: dict[str, Any]
    number_of_frames: int | None
    transfer_syntax: str | None
    frames_bytes: int
    frames_fetched: int
    files_path: str | None
    thumbnail_path: str | None
    # SR measurement rows, extracted in the pull thread (CPU work off the main thread).
    measurements: list[Measurement] = field(default_factory=list)


def _apply_study(study: Study, match: dict[str, Any]) -> None:
    study.patient_id = dj.text(match, dj.PATIENT_ID) or study.patient_id
    study.patient_name = dj.text(match, dj.PATIENT_NAME) or study.patient_name
    study.study_date = dj.text(match, dj.STUDY_DATE) or study.study_date
    study.study_time = dj.text(match, dj.STUDY_TIME) or study.study_time
    study.description = dj.text(match, dj.STUDY_DESCRIPTION) or study.description
    study.accession_number = dj.text(match, dj.ACCESSION_NUMBER) or study.accession_number
    modalities = [str(m) for m in dj.values(match, dj.MODALITIES_IN_STUDY)]
    study.modalities = "\\".join(modalities) or study.modalities
    study.remote_instance_count = dj.integer(match, dj.NUMBER_OF_STUDY_RELATED_INSTANCES)
    study.reconciled_at = utcnow()


def _stored_by_uid(
    db: Any, model: type[Study] | type[Series], uid_field: str, integration_id: int, uids: list[str]
) -> dict[str, Any]:
    """The rows of `model` already stored for these UIDs, by UID (one query)."""
    uid_column = getattr(model, uid_field)
    rows = db.exec(
        select(model).where(model.integration_id == integration_id, col(uid_column).in_(uids))
    ).all()
    return {getattr(row, uid_field): row for row in rows}


def upsert_studies(integration_id: int, matches: list[dict[str, Any]]) -> list[Study]:
    """Insert or update the studies the PACS returned, in one transaction."""
    by_uid = {dj.text(m, dj.STUDY_INSTANCE_UID): m for m in matches}
    with store.session() as db:
        existing = _stored_by_uid(db, Study, "study_uid", integration_id, list(by_uid))
        studies = []
        for uid, match in by_uid.items():
            study = existing.get(uid) or Study(integration_id=integration_id, study_uid=uid)
            _apply_study(study, match)
            db.add(study)
            studies.append(study)
    return studies


def upsert_series(integration_id: int, study: Study, matches: list[dict[str, Any]]) -> list[Series]:
    """Insert or update one study's series, in one transaction; mark the study walked."""
    by_uid = {dj.text(m, dj.SERIES_INSTANCE_UID): m for m in matches}
    with store.session() as db:
        existing = _stored_by_uid(db, Series, "series_uid", integration_id, list(by_uid))
        result = []
        for uid, match in by_uid.items():
            series = existing.get(uid) or Series(
                integration_id=integration_id,
                study_id=study.id,
                study_uid=study.study_uid,
                series_uid=uid,
            )
            series.modality = dj.text(match, dj.MODALITY) or series.modality
            series.description = dj.text(match, dj.SERIES_DESCRIPTION) or series.description
            series.series_number = dj.integer(match, dj.SERIES_NUMBER)
            series.remote_instance_count = dj.integer(match, dj.NUMBER_OF_SERIES_RELATED_INSTANCES)
            db.add(series)
            result.append(series)
        db.execute(update(Study).where(Study.id == study.id).values(pulled_at=utcnow()))
    return result


def pulled_instance_uids(integration_id: int, study_uid: str) -> set[str]:
    with store.session() as db:
        return set(
            db.exec(
                select(Instance.sop_instance_uid).where(
                    Instance.integration_id == integration_id, Instance.study_uid == study_uid
                )
            ).all()
        )


def pulled_counts(integration_id: int) -> dict[str, int]:
    """Pulled instances per study UID."""
    with store.session() as db:
        rows = db.exec(
            select(Instance.study_uid, func.count())
            .where(Instance.integration_id == integration_id)
            .group_by(Instance.study_uid)
        ).all()
    return dict(rows)


def mark_reconciled(integration_id: int, study_uids: list[str]) -> None:
    if not study_uids:
        return
    with store.session() as db:
        db.execute(
            update(Study)
            .where(Study.integration_id == integration_id, col(Study.study_uid).in_(study_uids))
            .values(reconciled_at=utcnow())
        )


def studies_to_reconcile(integration_id: int, exclude: set[str], limit: int) -> list[str]:
    """Known studies least recently checked, oldest first (never-checked first)."""
    with store.session() as db:
        rows = db.exec(
            select(Study.study_uid)
            .where(Study.integration_id == integration_id)
            .order_by(Study.reconciled_at.is_not(None), Study.reconciled_at)  # type: ignore[union-attr]
            .limit(limit + len(exclude))
        ).all()
    return [uid for uid in rows if uid not in exclude][:limit]


def _instance_row(
    integration_id: int, series: Series, pulled: PulledInstance, metadata_text: str
) -> dict[str, Any]:
    """An instance's row as the column values an INSERT takes: building ORM objects cost the
    sync's main thread, which the pull threads wait on for the GIL, more than the insert."""
    metadata = pulled.metadata
    return {
        "integration_id": integration_id,
        "series_id": series.id,
        "study_uid": pulled.study_uid,
        "series_uid": pulled.series_uid,
        "sop_instance_uid": pulled.sop_instance_uid,
        "sop_class_uid": dj.text(metadata, dj.SOP_CLASS_UID),
        "instance_number": dj.integer(metadata, dj.INSTANCE_NUMBER),
        "number_of_frames": pulled.number_of_frames,
        "rows": dj.integer(metadata, dj.ROWS),
        "columns": dj.integer(metadata, dj.COLUMNS),
        "transfer_syntax": pulled.transfer_syntax,
        "frames_bytes": pulled.frames_bytes,
        "metadata_bytes": len(metadata_text),
        "files_path": pulled.files_path,
        "thumbnail_path": pulled.thumbnail_path,
        "pulled_at": utcnow(),
    }


def store_instances(
    integration_id: int, batch: list[tuple[Series, PulledInstance]]
) -> list[int | None]:
    """Insert complete instances with their metadata: one transaction for the whole batch.

    Batching keeps the sync's main thread off the database most of the time (each commit
    costs a GIL hand-over while pull threads are busy). Returns each instance's metadata
    size, or None for one that was stored meanwhile by another run (idempotent).
    """
    try:
        with store.session() as db:
            return _insert_instances(db, integration_id, batch)
    except IntegrityError:
        pass
    # Someone else stored one of them: go one by one, skipping what exists.
    results: list[int | None] = []
    for pair in batch:
        try:
            with store.session() as db:
                results += _insert_instances(db, integration_id, [pair])
        except IntegrityError:
            results.append(None)
    return results


def _insert_instances(
    db: Any, integration_id: int, batch: list[tuple[Series, PulledInstance]]
) -> list[int | None]:
    """The batch's rows in three statements' worth of round-trips, not three per instance:
    the instances first (their ids come back in the batch's order), then metadata and
    measurements."""
    texts = [json.dumps(pulled.metadata, separators=(",", ":")) for _, pulled in batch]
    ids = db.scalars(
        insert(Instance).returning(Instance.id, sort_by_parameter_order=True),
        [
            _instance_row(integration_id, series, pulled, text)
            for (series, pulled), text in zip(batch, texts, strict=True)
        ],
    ).all()
    db.execute(
        insert(InstanceMetadata),
        [
            {"instance_id": instance_id, "dicom_json": text}
            for instance_id, text in zip(ids, texts, strict=True)
        ],
    )
    reports = [pulled for _, pulled in batch if pulled.measurements]
    if reports:
        # An SR's rows are replaced, never added to (a re-pull must not double them).
        db.execute(
            delete(Measurement).where(
                Measurement.integration_id == integration_id,
                col(Measurement.sop_instance_uid).in_([p.sop_instance_uid for p in reports]),
            )
        )
        db.add_all([row for pulled in reports for row in pulled.measurements])
    return [len(text) for text in texts]
