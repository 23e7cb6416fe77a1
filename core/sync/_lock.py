"""The per-integration sync lock: one run of an integration at a time, kept alive by a lease
that the run renews, and taken over when its holder is gone."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import store
from core.store import SyncLock, SyncRun, utcnow
from core.sync._owners import is_expired, lease_until, owner_is_dead


def acquire_lock(integration_id: int, owner: str, worker: str | None = None) -> bool:
    """Take the integration's lock if free, expired, or held by a dead process on this host;
    `worker` names the worker the run belongs to (None for `pacsbridge sync`)."""
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        if lock is None:
            return take_lock(db, integration_id, None, owner, worker)
        if lock.owner == owner:  # a run taking on the lock its worker claimed for it
            return take_lock(db, integration_id, lock, owner, worker or lock.worker)
        if is_expired(lock.expires_at) or owner_is_dead(lock.owner):
            return take_lock(db, integration_id, lock, owner, worker)
        return False


def take_lock(
    db: Session, integration_id: int, held: SyncLock | None, owner: str, worker: str | None
) -> bool:
    """Take the integration's lock within `db`'s transaction: a new row when none was `held`,
    else the held row, on condition that its owner is still the one read, so that of two
    processes taking the same lock one wins."""
    if held is None:
        try:
            with db.begin_nested():
                db.add(
                    SyncLock(
                        integration_id=integration_id,
                        owner=owner,
                        worker=worker,
                        expires_at=lease_until(),
                    )
                )
        except IntegrityError:  # another worker, a request or `pacsbridge sync` took it
            return False
        return True
    taken = db.execute(
        update(SyncLock)
        .where(SyncLock.integration_id == integration_id, SyncLock.owner == held.owner)
        .values(owner=owner, worker=worker, expires_at=lease_until())
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
