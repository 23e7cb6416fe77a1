"""Bringing a store to the current schema: the Alembic revisions in migrations/, run in place.

Every process that opens the store calls `migrate`; a store already at `HEAD` costs one query
and no Alembic import. Several processes may start at once (workers on several hosts), so the
upgrade runs under a lock: PostgreSQL's advisory lock, or a lock file beside a SQLite file.

Stores made before the move to Alembic carry a `schema_version` table counting the old
add-only steps (at most 7 were released); those steps are revisions 0001…0007 one for one, so
such a store is stamped with its revision and upgraded from there.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from core.errors import PacsbridgeError
from core.store_constants import HEAD

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number: the advisory lock's key, the same in every pacsbridge process.
_PG_LOCK_KEY = 7_310_426


def current_revision(connection: Connection) -> str | None:
    """The store's revision, or None for an empty database (or a pre-Alembic store)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


class StoreNewerThanCode(PacsbridgeError):
    """The store was upgraded by a newer pacsbridge than this one (a fleet upgraded host by
    host, or an older version started again): this code cannot read or write its tables."""

    default_hint = (
        "Install on this host the pacsbridge version that the other hosts run (or a newer one), "
        "then start it again; an older version must not run against an upgraded store."
    )


def migrate(engine: Engine) -> str:
    """Upgrade the store to HEAD if it is not there; return the revision it is at."""
    with engine.connect() as connection:
        if current_revision(connection) == HEAD:
            return HEAD
    with _migration_lock(engine), _migration_engine(engine).begin() as connection:
        _adopt_legacy_store(connection)
        revision = current_revision(connection)
        check_known(revision)
        if revision != HEAD:
            _upgrade(connection)
            _check_foreign_keys(connection)
        return current_revision(connection) or ""


def check_known(revision: str | None) -> None:
    """Raise StoreNewerThanCode for a store at a revision this version does not have."""
    if revision not in (None, HEAD) and revision not in _known_revisions():
        raise StoreNewerThanCode(
            f"the store's schema is at revision {revision}, which this pacsbridge does not "
            f"know (its newest is {HEAD}): a newer pacsbridge has upgraded the store"
        )


def _known_revisions() -> set[str]:
    """This version's revisions, named by their files ("0007_users.py" is revision 0007)."""
    return {path.name.partition("_")[0] for path in (MIGRATIONS / "versions").glob("[0-9]*.py")}


def _migration_engine(engine: Engine) -> Engine:
    """SQLite migrations run with foreign keys off, as SQLite's table rebuilds require
    (dropping the old table would otherwise cascade to every row that points at it)."""
    if engine.dialect.name != "sqlite":
        return engine
    return create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 30})


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise RuntimeError(f"the schema upgrade broke a foreign key: {tuple(broken)}")


def _upgrade(connection: Connection) -> None:
    # Imported here: only a store that needs an upgrade pays for Alembic.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _adopt_legacy_store(connection: Connection) -> None:
    """A store of the add-only steps: stamp the revision its step count stands for."""
    if not inspect(connection).has_table("schema_version"):
        return
    steps = connection.execute(text("SELECT version FROM schema_version")).scalar() or 0
    if steps:
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        connection.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:revision)"),
            {"revision": f"{steps:04d}"},
        )
    connection.execute(text("DROP TABLE schema_version"))


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            try:
                yield
            finally:
                holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
