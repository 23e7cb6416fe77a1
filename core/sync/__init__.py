"""Pulling clinics' data into the store: sync runs, the request queue, dead letters, and the
fleet's timetable and workers."""

from core.sync._failures import retry_dead_letter
from core.sync._owners import new_owner
from core.sync._queue import (
    claim_next_request,
    finish_request,
    list_requests,
    release_request,
    renew_request_lease,
    request_sync,
)
from core.sync._run import (
    SyncBusy,
    SyncOrder,
    SyncOutcome,
    SyncStopped,
    full_pull_windows,
    run_sync,
)
from core.sync._runs import last_scheduled_start
from core.sync._timetable import (
    ScheduledRun,
    claim_due_health_checks,
    claim_due_syncs,
    next_syncs,
    plan_timetable,
    release_claim,
)
from core.sync._workers import (
    WorkerView,
    announce_worker,
    live_workers,
    retire_worker,
    worker_heartbeat,
)

__all__ = [
    "ScheduledRun",
    "SyncBusy",
    "SyncOrder",
    "SyncOutcome",
    "SyncStopped",
    "WorkerView",
    "announce_worker",
    "claim_due_health_checks",
    "claim_due_syncs",
    "claim_next_request",
    "finish_request",
    "full_pull_windows",
    "last_scheduled_start",
    "list_requests",
    "live_workers",
    "new_owner",
    "next_syncs",
    "plan_timetable",
    "release_claim",
    "release_request",
    "renew_request_lease",
    "request_sync",
    "retire_worker",
    "retry_dead_letter",
    "run_sync",
    "worker_heartbeat",
]
