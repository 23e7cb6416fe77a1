"""Pulling clinics' data into the store: sync runs, the request queue, dead letters."""

from pacsbridge.core.sync._record import retry_dead_letter
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
    "full_pull_windows",
    "retry_dead_letter",
    "run_sync",
]
