"""Pulled files' paths relative to the data root (`$PACSBRIDGE_DATA`) rather than to the state
folder: "files/3/…" becomes "3/…", and the default data root is that same "files" folder, so
nothing moves on disk.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(
        "UPDATE instance SET files_path = substr(files_path, 7) WHERE files_path LIKE 'files/%'"
    )
    op.execute(
        "UPDATE instance SET thumbnail_path = substr(thumbnail_path, 7) "
        "WHERE thumbnail_path LIKE 'files/%'"
    )
