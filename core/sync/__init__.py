"""Pulling clinics' data into the store: sync runs, the request queue, dead letters."""

from pacsbridge.core.sync._owners import new_owner
from pacsbridge.core.sync._queue import (
    claim_next_request,
    finish_request,
    list_requests,
    release_request,
    renew_request_lease,
    request_sync,
)
from pacsbridge.core.sync._record import last_scheduled_start, retry_dead_letter
from pacsbridge.core.sync._run import (
    SyncBusy,
    SyncOrder,
    SyncOutcome,
    SyncStopped,
    full_pull_windows,
    run_sync,
)

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
