"""Alembic's entry: runs the revisions on the connection `core.store.migrate` hands over.

For writing a new revision against a scratch database:
    DATABASE_URL=sqlite:////tmp/scratch.db alembic -c core/store/migrations/alembic.ini \
        revision --autogenerate -m "what changes"
then edit it by hand (explicit DDL only, add-only) and raise HEAD in __init__.py.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.store  # noqa: F401 - registers every table on SQLModel.metadata
from core.store._database import create_store_engine, database_url

connection = context.config.attributes.get("connection")
if connection is None:
    connection = create_store_engine(database_url()).connect()
context.configure(connection=connection, target_metadata=SQLModel.metadata)
with context.begin_transaction():
    context.run_migrations()
