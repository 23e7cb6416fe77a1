"""The audit trail: who did what to which object, when and from where; append-only, refused
by the database itself.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

ACTIONS = (
    "SIGN_IN", "SIGN_IN_FAILED", "VIEW_PATIENT", "VIEW_STUDY", "ADD_INTEGRATION",
    "CHANGE_INTEGRATION", "REMOVE_INTEGRATION", "CHANGE_MAPPINGS", "REEXTRACT", "QUEUE_RESYNC",
    "RETRY_DEAD_LETTER", "ADD_USER", "REMOVE_USER", "CHANGE_PASSWORD",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "auditevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("action", sa.Enum(*ACTIONS, name="auditaction"), nullable=False),
        sa.Column("integration", sa.String(), nullable=True),
        sa.Column("object_id", sa.String(), nullable=True),
        sa.Column("client_address", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auditevent_at", "auditevent", ["at"])
    op.create_index("ix_auditevent_username", "auditevent", ["username"])
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f'CREATE TRIGGER "auditevent_no_{verb.lower()}" BEFORE {verb} ON "auditevent" '
                "BEGIN SELECT RAISE(ABORT, 'auditevent is append-only'); END"
            )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION pacsbridge_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        op.execute(
            'CREATE TRIGGER "auditevent_append_only" BEFORE UPDATE OR DELETE ON "auditevent" '
            "FOR EACH ROW EXECUTE FUNCTION pacsbridge_append_only()"
        )
