"""The SQLModel store shared by the CLI, the worker and the dashboard.

SQLite in `$PACSBRIDGE_HOME/pacsbridge.db` by default (WAL, so the dashboard reads while the
worker writes); `$DATABASE_URL=postgresql://…` for a fleet of workers on several hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL, Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from core.errors import PacsbridgeError
from core.store._audit import AuditAction, AuditEvent
from core.store._database import StoreConfigError, create_store_engine, database_url
from core.store._measurements import CodeMapping, Measurement
from core.store._models import Integration, utcnow
from core.store._pulled import Instance, InstanceMetadata, Series, Study
from core.store._schema import StoreNewerThanCode, check_known, current_revision, migrate
from core.store._sync import (
    DeadLetter,
    HealthCheck,
    RequestStatus,
    RunStatus,
    SyncError,
    SyncLock,
    SyncRequest,
    SyncRun,
    SyncSchedule,
    SyncScope,
    WorkerRecord,
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
    "StoreConfigError",
    "StoreNewerThanCode",
    "StoreUnavailable",
    "Study",
    "SyncError",
    "SyncLock",
    "SyncRequest",
    "SyncRun",
    "SyncSchedule",
    "SyncScope",
    "User",
    "UserRole",
    "WorkerRecord",
    "check_not_upgraded",
    "database_url",
    "dispose",
    "engine",
    "open_store",
    "session",
    "store_outage",
    "utcnow",
]


# One engine (one connection pool) per database URL, per process; every thread shares it.
_engines: dict[URL, Engine] = {}
_engines_lock = threading.Lock()


def engine() -> Engine:
    """The engine for the configured database, migrated to the current schema."""
    url = database_url()
    with _engines_lock:
        if url not in _engines:
            created = create_store_engine(url)
            migrate(created)
            _engines[url] = created
        return _engines[url]


def open_store() -> None:
    """Connect to the store, bring it to the current schema and check that no newer pacsbridge
    has upgraded it since (one query once open), or raise what stops that as an error a person
    can act on (`StoreUnavailable`, `StoreNewerThanCode`, ...)."""
    try:
        check_not_upgraded()
    except OperationalError as exc:
        raise store_outage(exc) or exc from exc


def check_not_upgraded() -> None:
    """Raise StoreNewerThanCode when a newer pacsbridge has upgraded the store since this
    process opened it (a fleet upgraded host by host): this process must not write to it."""
    with engine().connect() as connection:
        check_known(current_revision(connection))


def dispose() -> None:
    """Close the pooled connections of every engine this process opened (at the end of a
    test, before a fork); the next `engine()` connects afresh."""
    with _engines_lock:
        for opened in _engines.values():
            opened.dispose()
        _engines.clear()


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


class StoreUnavailable(PacsbridgeError):
    """The database did not answer: PostgreSQL down or unreachable, or SQLite locked too long."""

    default_hint = (
        "Check that the database server named by $DATABASE_URL is running and reachable from "
        "this host (for SQLite: that no other process keeps the file locked), then run the "
        "command again."
    )


def store_outage(exc: BaseException) -> StoreUnavailable | None:
    """The person-readable form of a failure to reach the store, or None for anything else.

    The driver's own words are kept (they name the host and port, never the password); the URL
    is shown with its password hidden.
    """
    if not isinstance(exc, OperationalError):
        return None
    cause = str(exc.orig or exc).strip().splitlines()[0]
    url = database_url()
    shown = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)
    return StoreUnavailable(f"the store ({shown}) did not answer: {cause}")
