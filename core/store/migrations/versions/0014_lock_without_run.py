"""The integration lock no longer names a run: nothing ever set or read it (the lock's owner
and worker say who holds it, and the run's own row says which run that is).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    # Rebuilt on SQLite, which migrations run with foreign keys off; ALTER on PostgreSQL.
    with op.batch_alter_table("synclock") as lock:
        lock.drop_column("run_id")
