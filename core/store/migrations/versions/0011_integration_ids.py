"""Integration ids are never reused: SQLite's AUTOINCREMENT on the integration table.

SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt (copied, dropped,
renamed); migrations run with SQLite's foreign keys off, as such a rebuild requires, so the
drop does not cascade to the pulled rows. PostgreSQL sequences never hand out an id twice.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "integration", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
