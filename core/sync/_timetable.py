"""The fleet's shared timetable: when each integration's scheduled sync and health check are
due, and how a worker claims them so that every due item is done by exactly one worker.

A claim moves the due time forward by the integration's interval in the same transaction that
takes the integration's lock for the claiming worker. On PostgreSQL the candidate rows are
read `FOR UPDATE SKIP LOCKED`, so workers claiming at the same moment take different rows
instead of queueing behind each other; on SQLite (one host) the update is conditional on the
due time read, which one writer at a time makes just as exclusive.

A worker that dies stops renewing the leases of the locks it holds; an expired lock makes its
integration due again at once, so another worker takes the run over within a lease period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core import store
from core.store import Integration, SyncLock, SyncSchedule, utcnow
from core.sync._lock import release_lock, take_lock
from core.sync._owners import new_owner
from core.sync._runs import last_scheduled_start

# At most this many rows are looked at per claim, so a claim stays one short transaction.
CLAIM_BATCH = 50


@dataclass(frozen=True)
class ScheduledRun:
    """A due sync claimed by a worker: run it with `owner`, which already holds the lock."""

    integration_id: int
    owner: str
    was_due_at: datetime


def plan_timetable() -> int:
    """Give every enabled integration without one a timetable row; return how many were added.

    A new row's sync is due one interval after the last scheduled run (now if there was none
    or it is past), so a restarted fleet does not re-run everything at once.
    """
    now = utcnow()
    with store.session() as db:
        planned = set(db.execute(select(SyncSchedule.integration_id)).scalars().all())
        enabled = db.execute(select(Integration).where(col(Integration.enabled))).scalars().all()
        missing = [integration for integration in enabled if integration.id not in planned]
    added = 0
    for integration in missing:
        assert integration.id is not None
        last = last_scheduled_start(integration.id)
        interval = timedelta(minutes=integration.schedule_minutes)
        row = SyncSchedule(
            integration_id=integration.id,
            next_sync_at=now if last is None else max(now, last + interval),
            next_health_at=now,
        )
        try:
            with store.session() as db:
                db.add(row)
            added += 1
        except IntegrityError:
            pass  # another worker planned it meanwhile
    return added


def claim_due_syncs(worker: str, limit: int) -> list[ScheduledRun]:
    """Claim up to `limit` due scheduled syncs for `worker`, the longest overdue first."""
    if limit <= 0:
        return []
    now = utcnow()
    claimed: list[ScheduledRun] = []
    with store.session() as db:
        for schedule, minutes, lock in _due(db, now, limit):
            owner = new_owner()
            # One savepoint per row: a row another worker claimed meanwhile is skipped alone.
            with db.begin_nested() as row:
                if not take_lock(db, schedule.integration_id, lock, owner, worker):
                    row.rollback()
                    continue
                moved = db.execute(
                    update(SyncSchedule)
                    .where(
                        SyncSchedule.integration_id == schedule.integration_id,
                        SyncSchedule.next_sync_at == schedule.next_sync_at,
                    )
                    .values(
                        next_sync_at=max(now, schedule.next_sync_at) + timedelta(minutes=minutes)
                    )
                )
                if moved.rowcount != 1:  # another worker moved it between our read and now
                    row.rollback()
                    continue
            claimed.append(ScheduledRun(schedule.integration_id, owner, schedule.next_sync_at))
    return claimed


def claim_due_health_checks(limit: int, every: timedelta) -> list[int]:
    """Claim up to `limit` due health checks (integration IDs); the next is due `every` later."""
    if limit <= 0:
        return []
    now = utcnow()
    with store.session() as db:
        query = (
            select(SyncSchedule.integration_id, SyncSchedule.next_health_at)
            .join(Integration, Integration.id == SyncSchedule.integration_id)
            .where(col(Integration.enabled), SyncSchedule.next_health_at <= now)
            .order_by(SyncSchedule.next_health_at)
            .limit(limit)
        )
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=SyncSchedule, skip_locked=True)
        due = db.execute(query).all()
        claimed = []
        for integration_id, due_at in due:
            moved = db.execute(
                update(SyncSchedule)
                .where(
                    SyncSchedule.integration_id == integration_id,
                    SyncSchedule.next_health_at == due_at,
                )
                .values(next_health_at=now + every)
            )
            if moved.rowcount == 1:
                claimed.append(integration_id)
    return claimed


def release_claim(claim: ScheduledRun) -> None:
    """Free the lock a claim took, unless a run took it on (the run releases it itself)."""
    release_lock(claim.integration_id, claim.owner)


def next_syncs() -> dict[int, datetime]:
    """Each planned integration's next scheduled sync."""
    with store.session() as db:
        return dict(
            db.execute(select(SyncSchedule.integration_id, SyncSchedule.next_sync_at)).all()
        )


def _due(db: Session, now: datetime, limit: int) -> list[tuple[SyncSchedule, int, SyncLock | None]]:
    """Due timetable rows of enabled integrations whose lock is free or expired: expired means
    the run's worker died, so it is due again whatever the timetable says."""
    lock_free = or_(col(SyncLock.integration_id).is_(None), SyncLock.expires_at < now)
    query = (
        select(SyncSchedule, Integration.schedule_minutes, SyncLock)
        .join(Integration, Integration.id == SyncSchedule.integration_id)
        .outerjoin(SyncLock, SyncLock.integration_id == SyncSchedule.integration_id)
        .where(
            col(Integration.enabled),
            lock_free,
            or_(
                SyncSchedule.next_sync_at <= now,
                and_(col(SyncLock.integration_id).is_not(None), SyncLock.expires_at < now),
            ),
        )
        .order_by(SyncSchedule.next_sync_at)
        .limit(min(limit, CLAIM_BATCH))
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=SyncSchedule, skip_locked=True)
    return [tuple(row) for row in db.execute(query).all()]  # type: ignore[misc]
