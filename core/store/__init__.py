"""The SQLModel store shared by the CLI, the worker and the dashboard.

SQLite in `$PACSBRIDGE_HOME/pacsbridge.db` by default (WAL, so the dashboard reads while the
worker writes); `$DATABASE_URL` points it elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from core.home import database_url
from core.store._audit import AuditAction, AuditEvent
from core.store._measurements import CodeMapping, Measurement
from core.store._models import Integration, utcnow
from core.store._pulled import Instance, InstanceMetadata, Series, Study
from core.store._schema import migrate
from core.store._sync import (
    DeadLetter,
    HealthCheck,
    RequestStatus,
    RunStatus,
    SyncError,
    SyncLock,
    SyncRequest,
    SyncRun,
    SyncScope,
)
from core.store._users import User, UserRole

__all__ = [
    "AuditAction",
    "AuditEvent",
    "CodeMapping",
    "DeadLetter",
    "HealthCheck",
    "Instance",
    "InstanceMetadata",
    "Integration",
    "Measurement",
    "RequestStatus",
    "RunStatus",
    "Series",
    "Study",
    "SyncError",
    "SyncLock",
    "SyncRequest",
    "SyncRun",
    "SyncScope",
    "User",
    "UserRole",
    "engine",
    "session",
    "utcnow",
]


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; a power cut may lose the last commits,
    # which the next sync simply pulls again. FULL would fsync every instance stored.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@cache
def _engine_for(url: str) -> Engine:
    created = create_engine(url)
    if created.dialect.name == "sqlite":
        event.listen(created, "connect", _sqlite_pragmas)
    migrate(created)
    return created


def engine() -> Engine:
    """The engine for the configured database, migrated to the current schema."""
    return _engine_for(database_url())


@contextmanager
def session() -> Iterator[Session]:
    """A short transaction: committed on success, rolled back on any error."""
    with Session(engine(), expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
