"""The integration list, read straight through the database driver when the store allows it.

`pacsbridge integrations list` is typed many times a day and called by scripts in loops. Through
the ORM it would spend most of its start-up importing SQLAlchemy, SQLModel and pydantic for one
query, so it reads the `integration` table with sqlite3 or psycopg instead and shows each row as
`core.integrations.describe_integration` does (tests/test_listing.py compares the two on both
databases). Whenever it cannot be sure of the store — none yet, a schema older than `HEAD`, a
`$DATABASE_URL` it does not read as it is, any error of the driver — it takes the ORM path,
which creates, migrates, or explains what is wrong.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from core.home import pacsbridge_home
from core.settings.auth import AuthKind
from core.settings.validation import settings_warnings
from core.store_constants import DATABASE_URL_ENV, HEAD, SQLITE_FILE

Row = dict[str, Any]

# Columns of the table that are not settings; every other column is one.
_NOT_SETTINGS = frozenset({"id", "secret_ciphertext", "created_at", "updated_at"})
_REVISION = "SELECT version_num FROM alembic_version"
_INTEGRATIONS = "SELECT * FROM integration ORDER BY name"


def integration_list() -> list[dict[str, Any]]:
    """Every integration by name, as `describe_integration` shows it: settings, whether a
    secret is set (never the secret), warnings and timestamps."""
    rows = _rows_through_driver()
    if rows is None:
        # Imported here: this is the path that needs the ORM and pays for its import.
        from core.integrations import describe_integration, list_integrations

        return [describe_integration(record) for record in list_integrations()]
    return [_described(row) for row in rows]


def _rows_through_driver() -> list[Row] | None:
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return _sqlite_rows(pacsbridge_home() / SQLITE_FILE)
    parts = urlsplit(url)
    # Only the plain form with a database name; `postgresql+driver://` and the like are for
    # core.store to accept or explain.
    if parts.scheme in {"postgresql", "postgres"} and parts.path.strip("/"):
        return _postgresql_rows(url)
    return None


def _sqlite_rows(path: Path) -> list[Row] | None:
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(path, timeout=10)) as db:
            if db.execute(_REVISION).fetchone() != (HEAD,):
                return None
            declared = {
                column: kind.upper()
                for _, column, kind, *_ in db.execute("PRAGMA table_info(integration)")
            }
            rows = _as_dicts(db.execute(_INTEGRATIONS))
    except sqlite3.Error:
        return None
    # SQLite keeps booleans as 0/1 and timestamps as text; SQLAlchemy's types turn them back.
    for row in rows:
        for column, kind in declared.items():
            if row[column] is None:
                continue
            if kind == "BOOLEAN":
                row[column] = bool(row[column])
            elif kind == "DATETIME":
                row[column] = datetime.fromisoformat(row[column])
    return rows


def _postgresql_rows(url: str) -> list[Row] | None:
    try:
        import psycopg
    except ImportError:
        return None  # core.store names the package to install
    try:
        with psycopg.connect(url, autocommit=True) as db:
            if db.execute(_REVISION).fetchone() != (HEAD,):
                return None
            return _as_dicts(db.execute(_INTEGRATIONS))
    except psycopg.Error:
        return None


def _as_dicts(cursor: Any) -> list[Row]:
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def _described(row: Row) -> dict[str, Any]:
    shown = {column: value for column, value in row.items() if column not in _NOT_SETTINGS}
    # SQLAlchemy stores an enum by its member's name.
    shown["auth_kind"] = AuthKind[shown["auth_kind"]].value
    shown["secret"] = "set" if row["secret_ciphertext"] else "not set"
    shown["warnings"] = settings_warnings(SimpleNamespace(**shown))
    shown["created_at"] = _in_utc(row["created_at"]).isoformat()
    shown["updated_at"] = _in_utc(row["updated_at"]).isoformat()
    return shown


def _in_utc(moment: datetime) -> datetime:
    """The store keeps timestamps in UTC: SQLite as text without a zone, PostgreSQL as
    `timestamptz` shown in the session's zone. The ORM gives them back in UTC; so does this."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
