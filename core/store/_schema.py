"""Schema versions: ordered steps that only ever add, so an upgrade never loses data.

Each step runs in its own transaction together with the bump of `schema_version`, so a crash
leaves the database at the previous version, never between two. A step that adds a table
creates it from its SQLModel class; a step that adds a column to an existing table must use
`add_column` (CREATE TABLE of a newer model would already contain it on a fresh database).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from core.store._measurements import CodeMapping, Measurement
from core.store._models import Integration
from core.store._pulled import Instance, InstanceMetadata, Series, Study
from core.store._sync import DeadLetter, HealthCheck, SyncError, SyncLock, SyncRequest, SyncRun
from core.store._users import User

Step = Callable[[Connection], None]


def create_tables(*models: type[SQLModel]) -> Step:
    def step(connection: Connection) -> None:
        SQLModel.metadata.create_all(connection, tables=[m.__table__ for m in models])  # type: ignore[attr-defined]

    return step


def add_column(table: str, column: str, ddl_type: str) -> Step:
    """ALTER TABLE … ADD COLUMN unless a fresh CREATE already made it."""

    def step(connection: Connection) -> None:
        existing = {c["name"] for c in inspect(connection).get_columns(table)}
        if column not in existing:
            connection.execute(text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {ddl_type}'))

    return step


STEPS: list[Step] = [
    create_tables(Integration),
    create_tables(Study, Series, Instance, InstanceMetadata),
    create_tables(SyncRun, SyncError, DeadLetter, SyncRequest, SyncLock, HealthCheck),
    add_column("integration", "lookback_days", "INTEGER NOT NULL DEFAULT 3"),
    create_tables(Measurement, CodeMapping),
    add_column("syncrun", "measurements", "INTEGER NOT NULL DEFAULT 0"),
    create_tables(User),
    add_column("integration", "max_response_mb", "INTEGER NOT NULL DEFAULT 64"),
]


def current_version(connection: Connection) -> int:
    if not inspect(connection).has_table("schema_version"):
        return 0
    return int(connection.execute(text("SELECT version FROM schema_version")).scalar_one())


def migrate(engine: Engine) -> int:
    """Bring the database up to the newest version; return that version."""
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        )
        if connection.execute(text("SELECT count(*) FROM schema_version")).scalar_one() == 0:
            connection.execute(text("INSERT INTO schema_version (version) VALUES (0)"))
    version = 0
    for number, step in enumerate(STEPS, start=1):
        with engine.begin() as connection:
            version = current_version(connection)
            if version >= number:
                continue
            step(connection)
            connection.execute(text("UPDATE schema_version SET version = :v"), {"v": number})
            version = number
    return version
