"""Pulling clinics' data into the store: sync runs, the request queue, dead letters."""

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

__all__ = [
    "SyncBusy",
    "SyncOrder",
    "SyncOutcome",
    "SyncStopped",
    "claim_next_request",
    "finish_request",
    "full_pull_windows",
    "last_scheduled_start",
    "list_requests",
    "new_owner",
    "release_request",
    "renew_request_lease",
    "request_sync",
    "retry_dead_letter",
    "run_sync",
]
