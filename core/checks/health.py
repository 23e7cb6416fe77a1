"""Periodic health checks: a cheap authenticated search per integration, kept as history.

The search asks for a study UID nobody has, so it proves reachability and login without
reading any patient's data.
"""

from __future__ import annotations

import time

from sqlmodel import select

from core import store
from core.dicomweb import DicomwebClient, PacsError, RetryPolicy
from core.errors import PacsbridgeError
from core.integrations import integration_secret, settings_of
from core.store import HealthCheck, Integration

PROBE_STUDY_UID = "1.2.3.4.5.6.7.8.9.0"


def check_health(integration: Integration) -> HealthCheck:
    """Probe the integration's PACS once and store the result."""
    started = time.perf_counter()
    error = None
    try:
        with DicomwebClient(
            settings_of(integration), integration_secret(integration), retry=RetryPolicy(attempts=2)
        ) as client:
            client.search_studies(study_uid=PROBE_STUDY_UID)
    except (PacsError, PacsbridgeError) as exc:
        error = exc.describe()
    check = HealthCheck(
        integration_id=integration.id,
        ok=error is None,
        error=error,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    with store.session() as db:
        db.add(check)
    return check


def health_history(integration_id: int, limit: int = 50) -> list[HealthCheck]:
    with store.session() as db:
        return list(
            db.exec(
                select(HealthCheck)
                .where(HealthCheck.integration_id == integration_id)
                .order_by(HealthCheck.checked_at.desc())  # type: ignore[attr-defined]
                .limit(limit)
            ).all()
        )
