"""Sync bookkeeping: runs, per-item failures, the dead-letter list, queued requests, locks and
health checks — what the worker writes and the dashboard and CLI read."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store._models import utcnow


def _integration_fk(*, primary_key: bool = False) -> int:
    return Field(
        sa_column=Column(
            Integer,
            ForeignKey("integration.id", ondelete="CASCADE"),
            index=not primary_key,
            primary_key=primary_key,
            nullable=False,
        )
    )


class SyncScope(StrEnum):
    INTEGRATION = "integration"
    PATIENT = "patient"
    STUDY = "study"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"  # some items failed, the rest was stored
    FAILED = "failed"  # nothing could be done (PACS unreachable, login refused…)
    INTERRUPTED = "interrupted"  # stopped by SIGTERM, or found dead after a crash


class RequestStatus(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class SyncRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    trigger: str  # "schedule", "request", "cli"
    requested_by: str | None = None
    scope: SyncScope = SyncScope.INTEGRATION
    scope_value: str | None = None  # the patient ID or study UID
    full: bool = False
    owner: str | None = None  # host:pid of the process running it
    started_at: datetime = Field(default_factory=utcnow, index=True)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: RunStatus = Field(default=RunStatus.RUNNING, index=True)
    # The StudyDate window start this run searched from (incremental runs), for the next one.
    window_start: str | None = None
    studies: int = 0  # studies looked at
    series: int = 0
    instances_found: int = 0
    instances_pulled: int = 0
    frames: int = 0
    measurements: int = 0
    requests: int = 0
    bytes: int = 0
    errors: int = 0
    progress_done: int = 0
    progress_total: int = 0
    message: str | None = None


class SyncError(SQLModel, table=True):
    """One failed item in one run: which UID, which request, what the PACS said."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("syncrun.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    integration_id: int = _integration_fk()
    item: str  # "study", "series", "instance"
    uid: str | None = None
    url: str | None = None
    status: int | None = None
    message: str
    hint: str | None = None
    attempts: int = 1
    at: datetime = Field(default_factory=utcnow)


class DeadLetter(SQLModel, table=True):
    """An item that kept failing across runs: skipped until someone retries it."""

    __table_args__ = (UniqueConstraint("integration_id", "item", "uid"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    item: str
    uid: str
    study_uid: str | None = None
    series_uid: str | None = None
    failures: int = 0
    last_error: str = ""
    last_status: int | None = None
    last_url: str | None = None
    first_failed_at: datetime = Field(default_factory=utcnow)
    last_failed_at: datetime = Field(default_factory=utcnow)
    dead: bool = False  # True once failures reached the limit


class SyncRequest(SQLModel, table=True):
    """A sync asked for by a person (dashboard, CLI) and carried out by a worker."""

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    scope: SyncScope = SyncScope.INTEGRATION
    scope_value: str | None = None
    full: bool = False
    requested_by: str | None = None
    requested_at: datetime = Field(default_factory=utcnow, index=True)
    status: RequestStatus = Field(default=RequestStatus.QUEUED, index=True)
    owner: str | None = None
    lease_expires_at: datetime | None = None
    claims: int = 0
    run_id: int | None = None
    finished_at: datetime | None = None
    error: str | None = None


class SyncLock(SQLModel, table=True):
    """At most one run per integration at a time, across processes and machines."""

    integration_id: int = _integration_fk(primary_key=True)
    owner: str
    expires_at: datetime
    # The worker running it (its owner ID); None for a `pacsbridge sync` run by hand.
    worker: str | None = None


class SyncSchedule(SQLModel, table=True):
    """When an integration's next scheduled sync and health check are due: the fleet's shared
    timetable, which workers claim from (a due time moved forward is a claim)."""

    integration_id: int = _integration_fk(primary_key=True)
    next_sync_at: datetime = Field(index=True)
    next_health_at: datetime = Field(index=True)


class WorkerRecord(SQLModel, table=True):
    """A `pacsbridge worker` process, as it announces itself; live while it heartbeats."""

    __tablename__ = "worker"

    owner: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)
    # How many integrations it runs at once.
    slots: int


class HealthCheck(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("integration_id", "checked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = _integration_fk()
    checked_at: datetime = Field(default_factory=utcnow, index=True)
    ok: bool
    error: str | None = None
    elapsed_ms: float | None = None
