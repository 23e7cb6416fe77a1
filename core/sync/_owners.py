"""Who holds a lease: `host:pid:token`, so a lease of a process that died on this host can be
taken over at once instead of waiting for it to expire (a SIGKILLed `pacsbridge sync`)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from core.store import utcnow

LEASE = timedelta(minutes=2)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when the owner ran on this host and its process is gone."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_until() -> datetime:
    return utcnow() + LEASE


def is_expired(expires_at: datetime | None) -> bool:
    if expires_at is None:
        return True
    if expires_at.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
        expires_at = expires_at.replace(tzinfo=utcnow().tzinfo)
    return expires_at < utcnow()
