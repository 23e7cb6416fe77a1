"""What a command needs to know about the store before, or instead of, importing SQLAlchemy:
where it is and which schema revision is current (see core.listing)."""

# `$DATABASE_URL` names a PostgreSQL store; unset, the store is this SQLite file in the state
# folder.
DATABASE_URL_ENV = "DATABASE_URL"
SQLITE_FILE = "pacsbridge.db"

# The newest Alembic revision (core/store/migrations/versions/). A store already at it is
# opened without importing Alembic; tests/test_store.py keeps the two equal.
HEAD = "0014"
