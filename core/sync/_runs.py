"""Sync run bookkeeping: a run's row from start to finish, its progress and heartbeat, and the
runs the scheduler and the incremental search look back on."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col, select

from core import store
from core.store import RunStatus, SyncLock, SyncRun, SyncScope, utcnow
from core.sync._owners import LEASE, is_expired, lease_until, owner_is_dead


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


def finish_run(run: SyncRun, status: RunStatus, message: str | None = None) -> None:
    run.status = status
    run.finished_at = utcnow()
    run.message = message
    with store.session() as db:
        db.merge(run)
