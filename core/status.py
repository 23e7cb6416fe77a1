"""Each integration's state at a glance — green, amber or red — for the dashboard's Overview.

The colour comes from what the worker recorded: the latest health check and the latest
finished sync run. Red means the clinic's PACS cannot be reached or read now; amber means
something needs a look (a partial run, nothing checked or synced yet, syncs falling behind
their schedule, or the integration switched off); green means the last check and run passed
and the last successful sync is recent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, func, select

from core import store
from core.settings.validation import settings_warnings
from core.store import (
    HealthCheck,
    Instance,
    Integration,
    RunStatus,
    Study,
    SyncError,
    SyncLock,
    SyncRun,
    SyncSchedule,
    SyncScope,
    WorkerRecord,
    utcnow,
)

# A successful sync older than this many schedule intervals means runs are failing to start
# or to finish (worker down, lock stuck), even if nothing recorded a failure.
STALE_AFTER_INTERVALS = 3
FINISHED = (RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.FAILED)
# As the sync itself counts it: a partial run stored everything but a few items.
SYNCED = (RunStatus.SUCCESS, RunStatus.PARTIAL)


class Light(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True)
class IntegrationStatus:
    """One Overview row: the colour, why, and the numbers behind it."""

    name: str
    enabled: bool
    light: Light
    reason: str
    syncing: bool
    last_success_at: datetime | None
    last_run_status: RunStatus | None
    last_health_ok: bool | None
    last_health_at: datetime | None
    studies: int
    instances: int
    last_error: str | None
    last_error_hint: str | None
    warnings: list[str]
    last_run_at: datetime | None = None
    next_sync_at: datetime | None = None
    # The worker syncing it now ("host (owner)"), "by hand" for `pacsbridge sync`, else None.
    running_on: str | None = None
    # How far past its due time the next scheduled sync is, when it is late and not running.
    late_by: timedelta | None = None


def integration_statuses(now: datetime | None = None) -> list[IntegrationStatus]:
    """Every integration's status, by name; a fixed number of queries however many there are."""
    now = now or utcnow()
    with store.session() as db:
        integrations = db.exec(select(Integration).order_by(Integration.name)).all()
        studies = _counts(db, Study)
        instances = _counts(db, Instance)
        health = _latest(db, HealthCheck)
        runs = _latest(db, SyncRun, col(SyncRun.status).in_(FINISHED))
        synced = _latest(
            db, SyncRun, col(SyncRun.status).in_(SYNCED), SyncRun.scope == SyncScope.INTEGRATION
        )
        running = set(
            db.exec(select(SyncRun.integration_id).where(SyncRun.status == RunStatus.RUNNING)).all()
        )
        timetable = dict(
            db.exec(select(SyncSchedule.integration_id, SyncSchedule.next_sync_at)).all()
        )
        holders = _lock_holders(db, now)
        partial_ids = [run.id for run in runs.values() if run.status is RunStatus.PARTIAL]
        item_errors = _latest_item_errors(db, partial_ids)
    statuses = []
    for integration in integrations:
        key = integration.id
        assert key is not None
        run = runs.get(key)
        check = health.get(key)
        success = synced.get(key)
        last_success_at = _aware(success.finished_at) if success else None
        light, reason = _light(integration, check, run, last_success_at, now)
        next_sync_at = _aware(timetable.get(key)) if integration.enabled else None
        running_on = holders.get(key)
        late = now - next_sync_at if next_sync_at and running_on is None else None
        error, hint = _last_error(check, run, item_errors.get(run.id) if run else None)
        statuses.append(
            IntegrationStatus(
                name=integration.name,
                enabled=integration.enabled,
                light=light,
                reason=reason,
                syncing=key in running,
                last_success_at=last_success_at,
                last_run_status=run.status if run else None,
                last_health_ok=check.ok if check else None,
                last_health_at=_aware(check.checked_at) if check else None,
                studies=studies.get(key, 0),
                instances=instances.get(key, 0),
                last_error=error,
                last_error_hint=hint,
                warnings=settings_warnings(integration),
                last_run_at=_aware(run.finished_at) if run else None,
                next_sync_at=next_sync_at,
                running_on=running_on,
                late_by=late if late and late > timedelta(0) else None,
            )
        )
    return statuses


def _lock_holders(db: Session, now: datetime) -> dict[int, str]:
    """Who runs each integration now: the worker's host and owner, or "by hand"."""
    rows = db.exec(
        select(SyncLock.integration_id, SyncLock.worker, WorkerRecord.host)
        .join(WorkerRecord, WorkerRecord.owner == SyncLock.worker, isouter=True)
        .where(SyncLock.expires_at >= now)
    ).all()
    return {
        integration_id: f"{host} ({worker})" if worker else "by hand (pacsbridge sync)"
        for integration_id, worker, host in rows
    }


def _light(
    integration: Integration,
    check: HealthCheck | None,
    run: SyncRun | None,
    last_success_at: datetime | None,
    now: datetime,
) -> tuple[Light, str]:
    # Switched off on purpose (often because it was red): its old failures are not news.
    if not integration.enabled:
        return Light.AMBER, "disabled: no scheduled syncs"
    if check is not None and not check.ok:
        return Light.RED, "the last health check failed"
    if run is not None and run.status is RunStatus.FAILED:
        return Light.RED, "the last sync run failed"
    if check is None:
        return Light.AMBER, "no health check yet (is the worker running?)"
    if run is None:
        return Light.AMBER, "no sync run yet (is the worker running?)"
    if run.status is RunStatus.PARTIAL:
        return Light.AMBER, f"the last sync run left {run.errors} items failed"
    allowed = timedelta(minutes=integration.schedule_minutes * STALE_AFTER_INTERVALS)
    if last_success_at is None or now - last_success_at > allowed:
        return (
            Light.AMBER,
            f"no successful sync of the whole clinic in the last {_minutes(allowed)} "
            f"(scheduled every {integration.schedule_minutes} min)",
        )
    return Light.GREEN, "the last health check and sync run passed"


def _last_error(
    check: HealthCheck | None, run: SyncRun | None, item_error: SyncError | None
) -> tuple[str | None, str | None]:
    """The error that explains the colour, and its hint where the record keeps it apart."""
    if check is not None and not check.ok:
        return check.error, None  # recorded with its hint appended
    if run is not None and run.status is RunStatus.FAILED:
        return run.message, None
    if item_error is not None:
        return f"{item_error.item} {item_error.uid or ''}: {item_error.message}", item_error.hint
    return None, None


def _counts(db: Session, model: type[Study] | type[Instance]) -> dict[int, int]:
    rows = db.exec(
        select(model.integration_id, func.count()).group_by(model.integration_id)  # type: ignore[arg-type]
    ).all()
    return {integration_id: count for integration_id, count in rows}


def _latest(db: Session, model: Any, *conditions: Any) -> dict[int, Any]:
    """The newest row of `model` per integration (ids grow with time) among those matching."""
    newest = select(func.max(model.id)).where(*conditions).group_by(model.integration_id)
    rows = db.exec(select(model).where(col(model.id).in_(newest))).all()
    return {row.integration_id: row for row in rows}


def _latest_item_errors(db: Session, run_ids: Sequence[int | None]) -> dict[int, SyncError]:
    if not run_ids:
        return {}
    newest = (
        select(func.max(SyncError.id))
        .where(col(SyncError.run_id).in_(run_ids))
        .group_by(SyncError.run_id)
    )
    rows = db.exec(select(SyncError).where(col(SyncError.id).in_(newest))).all()
    return {row.run_id: row for row in rows}


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without a zone; the store writes UTC only.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 120 else f"{minutes} min"
