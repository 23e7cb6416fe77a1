"""The sync's writes to the store: short transactions, upserts by UID, nothing half-written.

Runs in the sync's main thread only (the pull threads do HTTP and files), so SQLite sees one
writer per process and the dashboard can read between transactions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from pacsbridge.core import store
from pacsbridge.core.dicomweb import PacsError
from pacsbridge.core.dicomweb import _json as dj
from pacsbridge.core.errors import PacsbridgeError
from pacsbridge.core.measurements import replace_rows
from pacsbridge.core.store import (
    DeadLetter,
    Instance,
    InstanceMetadata,
    Measurement,
    RunStatus,
    Series,
    Study,
    SyncError,
    SyncLock,
    SyncRun,
    SyncScope,
    utcnow,
)
from pacsbridge.core.sync._owners import LEASE, is_expired, lease_until, owner_is_dead

# An item failing in this many runs in a row is set aside (dead letter) until retried.
DEAD_AFTER_FAILURES = 3


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


# --- locks and runs -----------------------------------------------------------------------


def acquire_lock(integration_id: int, owner: str) -> bool:
    """Take the integration's lock if free, expired, or held by a dead process on this host."""
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        if lock is None:
            db.add(SyncLock(integration_id=integration_id, owner=owner, expires_at=lease_until()))
            try:
                db.flush()
            except IntegrityError:  # another process inserted it first
                db.rollback()
                return False
            return True
        if (
            lock.owner != owner
            and not is_expired(lock.expires_at)
            and not owner_is_dead(lock.owner)
        ):
            return False
        # Conditional update: of two processes taking over the same stale lock, one wins.
        taken = db.execute(
            update(SyncLock)
            .where(SyncLock.integration_id == integration_id, SyncLock.owner == lock.owner)
            .values(owner=owner, expires_at=lease_until())
        )
        return taken.rowcount == 1


def renew_lease(integration_id: int, owner: str, run_id: int) -> bool:
    """Extend the lock and mark the run alive; False when the lock is no longer ours."""
    with store.session() as db:
        db.execute(update(SyncRun).where(SyncRun.id == run_id).values(heartbeat_at=utcnow()))
        renewed = db.execute(
            update(SyncLock)
            .where(SyncLock.integration_id == integration_id, SyncLock.owner == owner)
            .values(expires_at=lease_until())
        )
        return renewed.rowcount == 1


def release_lock(integration_id: int, owner: str) -> None:
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        if lock is not None and lock.owner == owner:
            db.delete(lock)


def lock_holder(integration_id: int) -> str | None:
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        return lock.owner if lock else None


def close_abandoned_runs(integration_id: int) -> int:
    """Runs left "running" by a process that died: mark them interrupted."""
    closed = 0
    with store.session() as db:
        running = db.exec(
            select(SyncRun).where(
                SyncRun.integration_id == integration_id, SyncRun.status == RunStatus.RUNNING
            )
        ).all()
        for run in running:
            if owner_is_dead(run.owner) or is_expired(run.heartbeat_at + LEASE):
                run.status = RunStatus.INTERRUPTED
                run.finished_at = utcnow()
                run.message = "the process running this sync stopped without finishing it"
                db.add(run)
                closed += 1
    return closed


def start_run(run: SyncRun) -> SyncRun:
    with store.session() as db:
        db.add(run)
    return run


def save_progress(run: SyncRun, owner: str) -> None:
    """Write counts and progress, and renew the lock's lease (the run's heartbeat)."""
    run.heartbeat_at = utcnow()
    with store.session() as db:
        db.merge(run)
        db.execute(
            update(SyncLock)
            .where(SyncLock.integration_id == run.integration_id, SyncLock.owner == owner)
            .values(expires_at=lease_until())
        )


def last_scheduled_start(integration_id: int) -> datetime | None:
    """When the last integration-wide run that was not interrupted started (UTC)."""
    with store.session() as db:
        started = db.exec(
            select(SyncRun.started_at)
            .where(
                SyncRun.integration_id == integration_id,
                SyncRun.scope == SyncScope.INTEGRATION,
                SyncRun.status != RunStatus.INTERRUPTED,
            )
            .order_by(col(SyncRun.started_at).desc())
            .limit(1)
        ).first()
    # SQLite gives back naive datetimes; the store writes UTC.
    return started.replace(tzinfo=UTC) if started and started.tzinfo is None else started


def last_successful_run(integration_id: int) -> SyncRun | None:
    with store.session() as db:
        return db.exec(
            select(SyncRun)
            .where(
                SyncRun.integration_id == integration_id,
                SyncRun.status.in_([RunStatus.SUCCESS, RunStatus.PARTIAL]),  # type: ignore[attr-defined]
                SyncRun.scope == SyncScope.INTEGRATION,
            )
            .order_by(SyncRun.started_at.desc())  # type: ignore[attr-defined]
        ).first()


# --- studies, series, instances -----------------------------------------------------------


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


def failing_items(integration_id: int) -> dict[str, DeadLetter]:
    """Instances with recorded failures (dead or not yet), by SOP Instance UID."""
    with store.session() as db:
        rows = db.exec(
            select(DeadLetter).where(
                DeadLetter.integration_id == integration_id, DeadLetter.item == "instance"
            )
        ).all()
    return {row.uid: row for row in rows}


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


def _instance_rows(
    integration_id: int, series: Series, pulled: PulledInstance
) -> tuple[Instance, str]:
    metadata = pulled.metadata
    text = json.dumps(metadata, separators=(",", ":"))
    instance = Instance(
        integration_id=integration_id,
        series_id=series.id,
        study_uid=pulled.study_uid,
        series_uid=pulled.series_uid,
        sop_instance_uid=pulled.sop_instance_uid,
        sop_class_uid=dj.text(metadata, dj.SOP_CLASS_UID),
        instance_number=dj.integer(metadata, dj.INSTANCE_NUMBER),
        number_of_frames=pulled.number_of_frames,
        rows=dj.integer(metadata, dj.ROWS),
        columns=dj.integer(metadata, dj.COLUMNS),
        transfer_syntax=pulled.transfer_syntax,
        frames_bytes=pulled.frames_bytes,
        metadata_bytes=len(text),
        files_path=pulled.files_path,
        thumbnail_path=pulled.thumbnail_path,
    )
    return instance, text


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
            sizes = [
                _insert_instance(db, integration_id, series, pulled) for series, pulled in batch
            ]
        return sizes
    except IntegrityError:
        pass
    # Someone else stored one of them: go one by one, skipping what exists.
    results: list[int | None] = []
    for series, pulled in batch:
        try:
            with store.session() as db:
                results.append(_insert_instance(db, integration_id, series, pulled))
        except IntegrityError:
            results.append(None)
    return results


def _insert_instance(db: Any, integration_id: int, series: Series, pulled: PulledInstance) -> int:
    instance, text = _instance_rows(integration_id, series, pulled)
    db.add(instance)
    db.flush()
    db.add(InstanceMetadata(instance_id=instance.id, dicom_json=text))
    if pulled.measurements:
        replace_rows(db, integration_id, pulled.sop_instance_uid, pulled.measurements)
    return len(text)


def clear_failures(integration_id: int, uids: list[str]) -> None:
    """Items that were stored at last leave the dead-letter list."""
    if not uids:
        return
    with store.session() as db:
        db.execute(
            delete(DeadLetter).where(
                DeadLetter.integration_id == integration_id, col(DeadLetter.uid).in_(uids)
            )
        )


# --- failures -----------------------------------------------------------------------------


def record_failure(
    run: SyncRun,
    *,
    item: str,
    uid: str | None,
    error: Exception,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> None:
    """One SyncError row for this run, and a step towards the dead-letter list for the item."""
    url = getattr(error, "url", None)
    status = getattr(error, "status", None)
    message = (
        str(error)
        if isinstance(error, PacsError | PacsbridgeError)
        else f"{type(error).__name__}: {error}"
    )
    hint = getattr(error, "hint", None)
    with store.session() as db:
        db.add(
            SyncError(
                run_id=run.id,
                integration_id=run.integration_id,
                item=item,
                uid=uid,
                url=url,
                status=status,
                message=message[:2000],
                hint=hint,
            )
        )
        if uid is None:
            return
        letter = db.exec(
            select(DeadLetter).where(
                DeadLetter.integration_id == run.integration_id,
                DeadLetter.item == item,
                DeadLetter.uid == uid,
            )
        ).first() or DeadLetter(integration_id=run.integration_id, item=item, uid=uid)
        letter.study_uid = study_uid or letter.study_uid
        letter.series_uid = series_uid or letter.series_uid
        letter.failures += 1
        letter.last_error = message[:2000]
        letter.last_status = status
        letter.last_url = url
        letter.last_failed_at = utcnow()
        letter.dead = letter.failures >= DEAD_AFTER_FAILURES
        db.add(letter)


def retry_dead_letter(integration_id: int, uid: str) -> bool:
    """Put a dead-lettered item back in line for the next run."""
    with store.session() as db:
        result = db.execute(
            update(DeadLetter)
            .where(DeadLetter.integration_id == integration_id, DeadLetter.uid == uid)
            .values(dead=False, failures=0)
        )
        return result.rowcount > 0


def finish_run(run: SyncRun, status: RunStatus, message: str | None = None) -> None:
    run.status = status
    run.finished_at = utcnow()
    run.message = message
    with store.session() as db:
        db.merge(run)
