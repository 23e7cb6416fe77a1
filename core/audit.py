"""The audit trail: record what a person did, and read it back.

Every sign-in (and failed one), every patient or study viewed, every change to integrations,
code mappings or users, and every resync queued leaves one row: who, what, which object
(an identifier, never a name or a value), when, and from which client address. Rows are
only ever added; the store refuses to change or delete them.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from core import store
from core.store import AuditAction, AuditEvent

__all__ = ["AuditAction", "AuditEvent", "audit_trail", "record"]

DEFAULT_LIMIT = 500


def record(
    action: AuditAction,
    username: str | None,
    *,
    integration: str | None = None,
    object_id: str | None = None,
    client_address: str | None = None,
) -> AuditEvent:
    """Add one row to the trail."""
    event = AuditEvent(
        action=action,
        username=username,
        integration=integration,
        object_id=object_id,
        client_address=client_address,
    )
    with store.session() as db:
        db.add(event)
    return event


def audit_trail(
    *,
    username: str | None = None,
    action: AuditAction | None = None,
    integration: str | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditEvent]:
    """The newest `limit` rows matching every filter given, newest first."""
    query = select(AuditEvent)
    if username is not None:
        query = query.where(AuditEvent.username == username)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if integration is not None:
        query = query.where(AuditEvent.integration == integration)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(limit)
    with store.session() as db:
        return list(db.exec(query).all())
