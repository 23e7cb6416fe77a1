"""Schema versions: ordered steps that only ever add, so an upgrade never loses data.

Each step runs in its own transaction together with the bump of `schema_version`, so a crash
leaves the database at the previous version, never between two. A step that adds a table
creates it from its SQLModel class; a step that adds a column to an existing table must use
`add_column` (CREATE TABLE of a newer model would already contain it on a fresh database).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, MetaData, inspect, select, text
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel

from core.store._audit import AuditEvent
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


def append_only(table: str) -> Step:
    """Make the database itself refuse UPDATE and DELETE on `table`, whoever connects."""

    def step(connection: Connection) -> None:
        if connection.dialect.name == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                connection.execute(
                    text(
                        f'CREATE TRIGGER "{table}_no_{verb.lower()}" BEFORE {verb} ON "{table}" '
                        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                    )
                )
        elif connection.dialect.name == "postgresql":
            connection.execute(
                text(
                    "CREATE OR REPLACE FUNCTION pacsbridge_append_only() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
                )
            )
            connection.execute(
                text(
                    f'CREATE TRIGGER "{table}_append_only" BEFORE UPDATE OR DELETE ON "{table}" '
                    "FOR EACH ROW EXECUTE FUNCTION pacsbridge_append_only()"
                )
            )

    return step


def never_reuse_integration_ids(connection: Connection) -> None:
    """Rebuild a SQLite `integration` table made before it had AUTOINCREMENT.

    SQLite cannot add AUTOINCREMENT to a table, so this is SQLite's documented table rebuild:
    with foreign keys off (else dropping the old table would cascade to every pulled row), copy
    the rows into a new table, drop the old one, give the new one its name and indexes.
    """
    if connection.dialect.name != "sqlite":
        return
    created = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'integration'")
    ).scalar_one()
    if "AUTOINCREMENT" in created.upper():
        return
    # Effective only outside a transaction; pysqlite has not begun one yet (it does so before
    # the first data change), and `migrate` discards the connection afterwards.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one():
        raise RuntimeError("cannot turn SQLite foreign keys off to rebuild the integration table")
    table = Integration.__table__  # type: ignore[attr-defined]
    rebuilt = table.to_metadata(MetaData(), name="integration_rebuilt")
    connection.execute(CreateTable(rebuilt))
    connection.execute(rebuilt.insert().from_select(list(table.columns.keys()), select(table)))
    connection.exec_driver_sql("DROP TABLE integration")
    connection.exec_driver_sql("ALTER TABLE integration_rebuilt RENAME TO integration")
    for index in table.indexes:
        index.create(connection)
    if connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
        raise RuntimeError("rebuilding the integration table broke a foreign key")


STEPS: list[Step] = [
    create_tables(Integration),
    create_tables(Study, Series, Instance, InstanceMetadata),
    create_tables(SyncRun, SyncError, DeadLetter, SyncRequest, SyncLock, HealthCheck),
    add_column("integration", "lookback_days", "INTEGER NOT NULL DEFAULT 3"),
    create_tables(Measurement, CodeMapping),
    add_column("syncrun", "measurements", "INTEGER NOT NULL DEFAULT 0"),
    create_tables(User),
    add_column("integration", "cycle_gap_days", "INTEGER NOT NULL DEFAULT 10"),
    add_column(
        "integration", "follicle_thresholds_mm", "VARCHAR NOT NULL DEFAULT '10,12,14,16,18'"
    ),
    add_column("integration", "trigger_follicle_count", "INTEGER NOT NULL DEFAULT 3"),
    add_column("integration", "trigger_diameter_mm", "FLOAT NOT NULL DEFAULT 17.0"),
    create_tables(AuditEvent),
    append_only("auditevent"),
    never_reuse_integration_ids,
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
    # A step may have changed connection settings (SQLite's foreign_keys); start afresh.
    engine.dispose()
    return version
