"""The workers of a fleet, as they announce themselves: who runs where since when, alive while
their heartbeat is recent, and what each is running now (the locks it holds)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from core import store
from core.store import Integration, SyncLock, WorkerRecord, utcnow
from core.sync._owners import LEASE


@dataclass(frozen=True)
class WorkerView:
    """One live worker, for `pacsbridge workers` and the dashboard."""

    owner: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    slots: int
    running: list[str]  # names of the integrations it is syncing now


def announce_worker(owner: str, slots: int) -> None:
    """Record this process as a live worker (again, after a database outage)."""
    with store.session() as db:
        db.merge(
            WorkerRecord(
                owner=owner,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=utcnow(),
                heartbeat_at=utcnow(),
                slots=slots,
            )
        )


def worker_heartbeat(owner: str) -> bool:
    """Mark the worker alive; False when its record is gone (removed as dead, or a new store)."""
    with store.session() as db:
        beat = db.execute(
            update(WorkerRecord).where(WorkerRecord.owner == owner).values(heartbeat_at=utcnow())
        )
        return beat.rowcount == 1


def retire_worker(owner: str) -> None:
    """A worker stopping cleanly leaves the list at once."""
    with store.session() as db:
        db.execute(delete(WorkerRecord).where(WorkerRecord.owner == owner))


def live_workers(now: datetime | None = None) -> list[WorkerView]:
    """Workers whose heartbeat is younger than a lease, oldest first; older records (a worker
    that died) are dropped on the way."""
    now = now or utcnow()
    with store.session() as db:
        db.execute(delete(WorkerRecord).where(WorkerRecord.heartbeat_at < now - LEASE))
        records = db.execute(select(WorkerRecord).order_by(WorkerRecord.started_at)).scalars().all()
        running = db.execute(
            select(SyncLock.worker, Integration.name)
            .join(Integration, Integration.id == SyncLock.integration_id)
            .where(SyncLock.expires_at >= now)
            .order_by(Integration.name)
        ).all()
    by_worker: dict[str, list[str]] = {}
    for worker, name in running:
        by_worker.setdefault(worker, []).append(name)
    return [
        WorkerView(
            owner=record.owner,
            host=record.host,
            pid=record.pid,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
            slots=record.slots,
            running=by_worker.get(record.owner, []),
        )
        for record in records
    ]
