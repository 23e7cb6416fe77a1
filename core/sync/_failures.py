"""Failures of a run, item by item, and the dead-letter list: an item that keeps failing is
set aside until someone retries it, instead of costing every run its requests."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlmodel import col, select

from core import store
from core.dicomweb import PacsError
from core.errors import PacsbridgeError
from core.store import DeadLetter, SyncError, SyncRun, utcnow

# An item failing in this many runs in a row is set aside (dead letter) until retried.
DEAD_AFTER_FAILURES = 3


def failing_items(integration_id: int) -> dict[str, DeadLetter]:
    """Instances with recorded failures (dead or not yet), by SOP Instance UID."""
    with store.session() as db:
        rows = db.exec(
            select(DeadLetter).where(
                DeadLetter.integration_id == integration_id, DeadLetter.item == "instance"
            )
        ).all()
    return {row.uid: row for row in rows}


def clear_failures(integration_id: int, uids: list[str]) -> None:
    """Items that were stored at last leave the dead-letter list."""
    if not uids:
        return
    with store.session() as db:
        db.execute(
            delete(DeadLetter).where(
                DeadLetter.integration_id == integration_id, col(DeadLetter.uid).in_(uids)
            )
        )


def record_failure(
    run: SyncRun,
    *,
    item: str,
    uid: str | None,
    error: Exception,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> None:
    """One SyncError row for this run, and a step towards the dead-letter list for the item."""
    url = getattr(error, "url", None)
    status = getattr(error, "status", None)
    message = (
        str(error)
        if isinstance(error, PacsError | PacsbridgeError)
        else f"{type(error).__name__}: {error}"
    )
    hint = getattr(error, "hint", None)
    with store.session() as db:
        db.add(
            SyncError(
                run_id=run.id,
                integration_id=run.integration_id,
                item=item,
                uid=uid,
                url=url,
                status=status,
                message=message[:2000],
                hint=hint,
            )
        )
        if uid is None:
            return
        letter = db.exec(
            select(DeadLetter).where(
                DeadLetter.integration_id == run.integration_id,
                DeadLetter.item == item,
                DeadLetter.uid == uid,
            )
        ).first() or DeadLetter(integration_id=run.integration_id, item=item, uid=uid)
        letter.study_uid = study_uid or letter.study_uid
        letter.series_uid = series_uid or letter.series_uid
        letter.failures += 1
        letter.last_error = message[:2000]
        letter.last_status = status
        letter.last_url = url
        letter.last_failed_at = utcnow()
        letter.dead = letter.failures >= DEAD_AFTER_FAILURES
        db.add(letter)


def retry_dead_letter(integration_id: int, uid: str) -> bool:
    """Put a dead-lettered item back in line for the next run."""
    with store.session() as db:
        result = db.execute(
            update(DeadLetter)
            .where(DeadLetter.integration_id == integration_id, DeadLetter.uid == uid)
            .values(dead=False, failures=0)
        )
        return result.rowcount > 0
