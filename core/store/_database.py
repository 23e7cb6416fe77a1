"""Which database the store uses, and a clear error when `$DATABASE_URL` cannot be used.

`$DATABASE_URL` takes the plain forms operators know (`postgresql://user:pw@host:5432/db`,
`sqlite:////var/lib/pacsbridge/pacsbridge.db`); pacsbridge picks the driver: psycopg 3 for
PostgreSQL. Unset, the store is the SQLite file in the state folder.
"""

from __future__ import annotations

import importlib.util
import os

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from core.errors import PacsbridgeError
from core.home import pacsbridge_home
from core.store_constants import DATABASE_URL_ENV, SQLITE_FILE

EXAMPLE = "postgresql://pacsbridge:PASSWORD@db.example:5432/pacsbridge"
# The backend named in the URL → the driver pacsbridge uses for it, and its pip package.
DRIVERS = {
    "postgresql": ("psycopg", "psycopg"),
    "postgres": ("psycopg", "psycopg"),
    "sqlite": ("pysqlite", None),
}


class StoreConfigError(PacsbridgeError):
    """`$DATABASE_URL` names no database pacsbridge can use."""


def database_url() -> URL:
    """The store's URL with pacsbridge's driver: `$DATABASE_URL`, else the SQLite file."""
    raw = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not raw:
        return make_url(f"sqlite:///{pacsbridge_home() / SQLITE_FILE}")
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreConfigError(
            f"${DATABASE_URL_ENV} is not a database URL",
            hint=f"Give one like {EXAMPLE}, or unset it to use SQLite in $PACSBRIDGE_HOME.",
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend not in DRIVERS:
        raise StoreConfigError(
            f"${DATABASE_URL_ENV} names the database {backend!r}, which pacsbridge does not support",
            hint=f"Use PostgreSQL ({EXAMPLE}) or SQLite (sqlite:////path/to/pacsbridge.db).",
        )
    wanted, package = DRIVERS[backend]
    if driver and driver != wanted:
        raise StoreConfigError(
            f"${DATABASE_URL_ENV} asks for the driver {driver!r}; pacsbridge uses {wanted} for {backend}",
            hint=f"Drop '+{driver}' from the URL: {backend}://…",
        )
    if package and importlib.util.find_spec(package) is None:
        raise StoreConfigError(
            f"${DATABASE_URL_ENV} names {backend}, but its driver {package!r} is not installed",
            hint=f"Install it into pacsbridge's environment: pip install '{package}[binary]'.",
        )
    if backend != "sqlite" and not url.database:
        raise StoreConfigError(
            f"${DATABASE_URL_ENV} names no database ({url.render_as_string(hide_password=True)})",
            hint=f"End the URL with the database's name, e.g. {EXAMPLE}.",
        )
    return url.set(drivername="postgresql+psycopg" if backend != "sqlite" else "sqlite")


def create_store_engine(url: URL) -> Engine:
    """An engine with the settings each backend needs; not yet migrated."""
    if url.get_backend_name() == "sqlite":
        created = create_engine(url)
        event.listen(created, "connect", _sqlite_pragmas)
        return created
    # pre_ping: a pooled connection that died with a database restart is replaced, not used.
    created = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    event.listen(created, "connect", _postgresql_session)
    return created


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; a power cut may lose the last commits,
    # which the next sync simply pulls again. FULL would fsync every instance stored.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgresql_session(dbapi_connection: object, _record: object) -> None:
    # Timestamps are written and read in UTC whatever the server's or the host's zone.
    with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()  # type: ignore[attr-defined]
