"""The store's tables. Names follow the domain; each table says which part of the product owns it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field

from core.settings.model import IntegrationSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


class Integration(IntegrationSettings, table=True):
    """One clinic's PACS. The secret is Fernet ciphertext (see core.secrets), never plaintext."""

    # Ids are never reused: pulled files live under files/<id>/, and a new integration must not
    # inherit a removed one's leftovers. PostgreSQL sequences never go back; SQLite needs
    # AUTOINCREMENT for that (without it, deleting the highest id frees it again).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own attribute

    id: int | None = Field(default=None, primary_key=True)
    secret_ciphertext: str | None = Field(default=None, repr=False)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
