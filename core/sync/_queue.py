"""Sync requests: people (dashboard, CLI) queue them, workers claim them with a lease.

A claim is one conditional UPDATE, so of two workers racing for a request exactly one
matches it; a worker that dies stops renewing its lease, and the request becomes claimable
again when the lease runs out.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import select

from core import store
from core.errors import InvalidInput
from core.integrations import get_integration
from core.store import RequestStatus, SyncRequest, SyncScope, utcnow
from core.uids import check_uid

REQUEST_LEASE = timedelta(minutes=2)
# A request whose runs keep dying with the worker is not retried forever.
MAX_CLAIMS = 5


def request_sync(
    name: str,
    *,
    patient_id: str | None = None,
    study_uid: str | None = None,
    full: bool = False,
    requested_by: str | None = None,
) -> SyncRequest:
    """Queue a sync of an integration, one patient or one study for the worker."""
    if patient_id is not None and study_uid is not None:
        raise InvalidInput("give a patient ID or a study UID, not both")
    integration = get_integration(name)
    if patient_id is not None:
        if not patient_id.strip():
            raise InvalidInput("the patient ID is empty")
        scope, value = SyncScope.PATIENT, patient_id.strip()
    elif study_uid is not None:
        scope, value = SyncScope.STUDY, check_uid(study_uid.strip(), what="Study Instance UID")
    else:
        scope, value = SyncScope.INTEGRATION, None
    request = SyncRequest(
        integration_id=integration.id,
        scope=scope,
        scope_value=value,
        full=full,
        requested_by=requested_by,
    )
    with store.session() as db:
        db.add(request)
    return request


def _claimable() -> object:
    now = utcnow()
    return or_(
        SyncRequest.status == RequestStatus.QUEUED,
        (SyncRequest.status == RequestStatus.CLAIMED) & (SyncRequest.lease_expires_at < now),  # type: ignore[operator]
    )


def claim_next_request(owner: str) -> SyncRequest | None:
    """Claim the oldest claimable request for `owner`, or None when there is none."""
    with store.session() as db:
        candidates = db.exec(
            select(SyncRequest.id).where(_claimable()).order_by(SyncRequest.requested_at).limit(10)
        ).all()
    for request_id in candidates:
        with store.session() as db:
            claimed = db.execute(
                update(SyncRequest)
                .where(SyncRequest.id == request_id, _claimable())
                .values(
                    status=RequestStatus.CLAIMED,
                    owner=owner,
                    lease_expires_at=utcnow() + REQUEST_LEASE,
                    claims=SyncRequest.claims + 1,
                )
            )
            if claimed.rowcount != 1:
                continue  # another worker was faster
            request = db.get(SyncRequest, request_id)
            assert request is not None
            if request.claims > MAX_CLAIMS:
                request.status = RequestStatus.FAILED
                request.finished_at = utcnow()
                request.error = f"abandoned: claimed {request.claims - 1} times without finishing"
                db.add(request)
                continue
            return request
    return None


def renew_request_lease(request_id: int, owner: str) -> bool:
    with store.session() as db:
        renewed = db.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id, SyncRequest.owner == owner)
            .values(lease_expires_at=utcnow() + REQUEST_LEASE)
        )
        return renewed.rowcount == 1


def finish_request(
    request_id: int, owner: str, *, run_id: int | None, error: str | None = None
) -> None:
    with store.session() as db:
        db.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id, SyncRequest.owner == owner)
            .values(
                status=RequestStatus.FAILED if error else RequestStatus.DONE,
                run_id=run_id,
                finished_at=utcnow(),
                error=error,
            )
        )


def release_request(request_id: int, owner: str) -> None:
    """Give a claimed request back (the worker is stopping) for another worker to take."""
    with store.session() as db:
        db.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id, SyncRequest.owner == owner)
            # A graceful hand-back is not an abandonment: it does not count towards MAX_CLAIMS.
            .values(
                status=RequestStatus.QUEUED,
                owner=None,
                lease_expires_at=None,
                claims=SyncRequest.claims - 1,
            )
        )


def list_requests(integration_id: int | None = None, limit: int = 50) -> list[SyncRequest]:
    with store.session() as db:
        query = select(SyncRequest).order_by(SyncRequest.requested_at.desc()).limit(limit)  # type: ignore[attr-defined]
        if integration_id is not None:
            query = query.where(SyncRequest.integration_id == integration_id)
        return list(db.exec(query).all())
