"""Dashboard accounts: who may sign in, with which role. Owned by core.users."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.store._models import utcnow


class UserRole(StrEnum):
    VIEWER = "viewer"  # browse, test connections, diagnose
    ADMIN = "admin"  # also change integrations and mappings, queue resyncs


class User(SQLModel, table=True):
    """A dashboard account. `password_hash` is a self-describing scrypt string, never plaintext."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    password_hash: str = Field(repr=False)
    role: UserRole = UserRole.VIEWER
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN
