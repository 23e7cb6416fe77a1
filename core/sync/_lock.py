"""The per-integration sync lock: one run of an integration at a time, kept alive by a lease
that the run renews, and taken over when its holder is gone."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core import store
from core.store import SyncLock, SyncRun, utcnow
from core.sync._owners import is_expired, lease_until, owner_is_dead


def acquire_lock(integration_id: int, owner: str, worker: str | None = None) -> bool:
    """Take the integration's lock if free, expired, or held by a dead process on this host;
    `worker` names the worker the run belongs to (None for `pacsbridge sync`)."""
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        if lock is None:
            db.add(
                SyncLock(
                    integration_id=integration_id,
                    owner=owner,
                    worker=worker,
                    expires_at=lease_until(),
                )
            )
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
            .values(owner=owner, worker=worker or lock.worker, expires_at=lease_until())
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
