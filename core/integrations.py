"""Add, change, remove and look up integrations in the store.

Every write goes through `validate_settings` first and happens in one short transaction, so
the store never holds an integration that failed a check, and a secret is encrypted before it
reaches the session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select

from core import files, store
from core.errors import (
    ConfigProblem,
    IntegrationExists,
    InvalidIntegration,
    PacsbridgeError,
    SecretNeedsReentry,
    SecretStoreError,
    UnknownIntegration,
)
from core.secrets import SecretBox
from core.settings.auth import SECRET_LABELS, AuthKind
from core.settings.model import IntegrationSettings
from core.settings.validation import settings_warnings, validate_settings
from core.store import Integration, utcnow

EDITABLE_FIELDS = frozenset(IntegrationSettings.model_fields)


def _missing_secret(settings: IntegrationSettings) -> InvalidIntegration:
    what = SECRET_LABELS[settings.auth_kind]
    return InvalidIntegration(
        [
            ConfigProblem(
                "secret",
                f"{settings.auth_kind.value} authentication needs a {what}",
                "Give it in $PACSBRIDGE_SECRET or at the hidden prompt.",
            )
        ]
    )


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    """Scheme, host and port: where a request (and so a credential) goes; the path does not
    change who receives it."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # an invalid port is the validator's to report; it is a change here
        port = -1
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def secret_destination_changes(
    stored: IntegrationSettings, draft: IntegrationSettings
) -> list[str]:
    """What in `draft` sends the stored secret somewhere it was not given for: another
    scheme, host or port of the base URI or the token URL, or another authentication kind (a
    password sent as a bearer token). Empty when the stored secret may be kept."""
    changes = []
    before, after = AuthKind(stored.auth_kind), AuthKind(draft.auth_kind)
    if before is not after:
        changes.append(f"authentication {before.value} → {after.value}")
    if _origin(stored.base_uri) != _origin(draft.base_uri):
        changes.append("the base URI's scheme, host or port")
    if after is AuthKind.OAUTH2 and _origin(stored.token_url) != _origin(draft.token_url):
        changes.append("the token URL's scheme, host or port")
    return changes


def stored_secret_reusable(record: Integration, draft: IntegrationSettings) -> bool:
    """Whether the record's stored secret may be used with the (possibly edited) `draft`."""
    return bool(record.secret_ciphertext) and not secret_destination_changes(
        settings_of(record), draft
    )


def add_integration(settings: IntegrationSettings, secret: str | None) -> Integration:
    """Validate and store a new integration with its secret encrypted."""
    settings = validate_settings(settings)
    if settings.needs_secret() and not secret:
        raise _missing_secret(settings)
    with store.session() as db:
        if db.exec(select(Integration).where(Integration.name == settings.name)).first():
            raise IntegrationExists(f"an integration named {settings.name!r} exists already")
        record = Integration.model_validate(settings.model_dump())
        record.secret_ciphertext = SecretBox().encrypt(secret) if secret else None
        db.add(record)
    return record


def edit_integration(name: str, changes: dict[str, Any], secret: str | None = None) -> Integration:
    """Apply `changes` to the named integration; a new `secret` replaces the stored one."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    with store.session() as db:
        record = _get(db, name)
        current = IntegrationSettings.model_validate(record.model_dump(include=EDITABLE_FIELDS))
        # Validated, not copied: "bearer" from the command line must become AuthKind.BEARER.
        updated = validate_settings(
            IntegrationSettings.model_validate(current.model_dump() | changes)
        )
        if (
            updated.name != name
            and db.exec(select(Integration).where(Integration.name == updated.name)).first()
        ):
            raise IntegrationExists(f"an integration named {updated.name!r} exists already")
        if updated.needs_secret() and not (secret or record.secret_ciphertext):
            raise _missing_secret(updated)
        if updated.needs_secret() and not secret:
            changed = secret_destination_changes(current, updated)
            if changed:
                raise SecretNeedsReentry(
                    SECRET_LABELS.get(current.auth_kind, "secret"),
                    SECRET_LABELS[updated.auth_kind],
                    changed,
                )
        for field in EDITABLE_FIELDS:
            setattr(record, field, getattr(updated, field))
        if secret:
            record.secret_ciphertext = SecretBox().encrypt(secret)
        elif not updated.needs_secret():
            record.secret_ciphertext = None
        record.updated_at = utcnow()
        db.add(record)
    return record


def remove_integration(name: str) -> None:
    """Delete the integration, everything pulled for it from the store, then its files.

    Files go last: a crash in between leaves files no row points at (ids are never reused, so
    no later integration adopts them), never a row pointing at a missing file.
    """
    with store.session() as db:
        record = _get(db, name)
        integration_id = record.id
        db.delete(record)
    try:
        files.remove_integration_files(integration_id)
    except OSError as exc:
        folder = files.absolute(files.integration_dir(integration_id))
        raise PacsbridgeError(
            f"{name} was removed, but its pulled files could not be deleted ({exc.strerror})",
            hint=f"Delete {folder} by hand; nothing refers to it any more.",
        ) from exc


def get_integration(name: str) -> Integration:
    with store.session() as db:
        return _get(db, name)


def find_integration(integration_id: int) -> Integration | None:
    """The integration with this ID, or None (removed)."""
    with store.session() as db:
        return db.get(Integration, integration_id)


def list_integrations() -> list[Integration]:
    with store.session() as db:
        return list(db.exec(select(Integration).order_by(Integration.name)).all())


def key_problem() -> SecretStoreError | None:
    """Whether this process's key opens the stored secrets: one integration's secret is tried.

    A worker or dashboard given another key than the fleet's would otherwise fail every
    clinic's sign-in one by one; it checks once at start and says so in one line instead.
    """
    with store.session() as db:
        sample = db.exec(
            select(Integration.secret_ciphertext)
            .where(col(Integration.secret_ciphertext).is_not(None))
            .limit(1)
        ).first()
    if sample is None:
        return None
    try:
        SecretBox().decrypt(sample)
    except SecretStoreError as exc:
        return exc
    return None


def integration_secret(record: Integration) -> str | None:
    """The decrypted secret, for building a client; never display or log it."""
    return SecretBox().decrypt(record.secret_ciphertext) if record.secret_ciphertext else None


def settings_of(record: Integration) -> IntegrationSettings:
    return IntegrationSettings.model_validate(record.model_dump(include=EDITABLE_FIELDS))


def describe_integration(record: Integration) -> dict[str, Any]:
    """What may be shown of an integration: every setting, whether a secret is set, warnings."""
    dumped = record.model_dump(include=EDITABLE_FIELDS, mode="json")
    shown = {field: dumped[field] for field in IntegrationSettings.model_fields}
    shown["secret"] = "set" if record.secret_ciphertext else "not set"
    shown["warnings"] = settings_warnings(record)
    shown["created_at"] = record.created_at.isoformat()
    shown["updated_at"] = record.updated_at.isoformat()
    return shown


def _get(db: Any, name: str) -> Integration:
    record = db.exec(select(Integration).where(Integration.name == name)).first()
    if record is None:
        raise UnknownIntegration(f"no integration named {name!r}")
    return record
