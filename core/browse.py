"""Read-only queries over pulled data and sync history, for the CLI and the dashboard.

Paging happens in SQL (LIMIT/OFFSET on indexed columns), so a clinic with 100k studies
costs one page, not the whole table.
"""

from __future__ import annotations

from sqlmodel import col, select

from pacsbridge.core import store
from pacsbridge.core.integrations import get_integration
from pacsbridge.core.paths import check_uid
from pacsbridge.core.store import DeadLetter, Instance, Study, SyncError, SyncRun


def list_runs(name: str, limit: int = 20) -> list[SyncRun]:
    integration = get_integration(name)
    with store.session() as db:
        return list(
            db.exec(
                select(SyncRun)
                .where(SyncRun.integration_id == integration.id)
                .order_by(col(SyncRun.started_at).desc())
                .limit(limit)
            ).all()
        )


def run_errors(run_id: int) -> list[SyncError]:
    with store.session() as db:
        return list(
            db.exec(
                select(SyncError).where(SyncError.run_id == run_id).order_by(SyncError.id)
            ).all()
        )


def dead_letters(name: str) -> list[DeadLetter]:
    integration = get_integration(name)
    with store.session() as db:
        return list(
            db.exec(
                select(DeadLetter)
                .where(DeadLetter.integration_id == integration.id, DeadLetter.dead == True)  # noqa: E712
                .order_by(col(DeadLetter.last_failed_at).desc())
            ).all()
        )


def list_studies(
    name: str, *, patient_id: str | None = None, limit: int = 100, offset: int = 0
) -> list[Study]:
    integration = get_integration(name)
    query = select(Study).where(Study.integration_id == integration.id)
    if patient_id:
        query = query.where(Study.patient_id == patient_id)
    query = (
        query.order_by(col(Study.study_date).desc(), col(Study.id).desc())
        .limit(limit)
        .offset(offset)
    )
    with store.session() as db:
        return list(db.exec(query).all())


def list_instances(name: str, study_uid: str) -> list[Instance]:
    integration = get_integration(name)
    check_uid(study_uid, what="Study Instance UID")
    with store.session() as db:
        return list(
            db.exec(
                select(Instance)
                .where(Instance.integration_id == integration.id, Instance.study_uid == study_uid)
                .order_by(Instance.series_uid, Instance.instance_number, Instance.sop_instance_uid)
            ).all()
        )
