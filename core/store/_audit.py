"""The audit trail: who did what to which object, when, from where. Owned by core.audit.

Rows hold identifiers only (a user name, an integration name, a study UID or patient ID),
never names, dates of birth, images or measurements. The table is append-only: the store
refuses to update or delete its rows (see `append_only` in the schema).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.store._models import utcnow


class AuditAction(StrEnum):
    SIGN_IN = "sign-in"
    SIGN_IN_FAILED = "sign-in-failed"
    VIEW_PATIENT = "view-patient"
    VIEW_STUDY = "view-study"
    ADD_INTEGRATION = "add-integration"
    CHANGE_INTEGRATION = "change-integration"
    REMOVE_INTEGRATION = "remove-integration"
    CHANGE_MAPPINGS = "change-mappings"
    REEXTRACT = "reextract"
    QUEUE_RESYNC = "queue-resync"
    RETRY_DEAD_LETTER = "retry-dead-letter"
    ADD_USER = "add-user"
    REMOVE_USER = "remove-user"
    CHANGE_PASSWORD = "change-password"  # noqa: S105 - an action, not a password


class AuditEvent(SQLModel, table=True):
    """One thing a person did. `username` is None for a failed sign-in with an unknown name."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    username: str | None = Field(default=None, index=True, max_length=64)
    action: AuditAction
    integration: str | None = None
    object_id: str | None = None
    client_address: str | None = None
