"""Read-only queries over pulled data and sync history, for the CLI and the dashboard.

Paging happens in SQL (LIMIT/OFFSET on indexed columns, plus one COUNT), so a clinic with
100k studies costs one page, not the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import col, select

from core import store
from core.errors import InvalidInput, PacsbridgeError
from core.integrations import get_integration
from core.store import DeadLetter, Instance, Series, Study, SyncError, SyncRun, utcnow
from core.uids import check_uid

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class UnknownStudy(PacsbridgeError):
    """No pulled study of this integration has that Study Instance UID."""

    default_hint = (
        "It has not been pulled (yet): check the patient on Connection test, or queue a resync."
    )


class NameMatch(StrEnum):
    PREFIX = "prefix"
    CONTAINS = "contains"


@dataclass(frozen=True)
class StudyPage:
    """One page of a study search and the number of studies matching it in all."""

    rows: list[Study]
    total: int
    # Instances stored per study UID of this page (counted for the page only, not the table).
    pulled: dict[str, int]


@dataclass(frozen=True)
class SeriesContents:
    series: Series
    instances: list[Instance]


@dataclass(frozen=True)
class StudyContents:
    study: Study
    series: list[SeriesContents]


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


def run_duration(run: SyncRun, now: datetime | None = None) -> timedelta:
    """How long a run took, or has taken so far when it is still running."""
    end = run.finished_at or now or utcnow()
    # SQLite hands datetimes back without their zone; both ends are UTC.
    return end.replace(tzinfo=None) - run.started_at.replace(tzinfo=None)


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


def name_pattern(words: str, match: NameMatch) -> str:
    """A LIKE pattern matching the words in order, whatever separates them in the stored name.

    DICOM person names separate their parts with '^' ("Jansen^Emma"), which nobody types:
    "jansen emma" must find it. LIKE's own wildcards in the input are matched literally.
    """
    parts = words.replace("^", " ").split()
    escaped = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts]
    pattern = "%".join(escaped) + "%"
    return pattern if match is NameMatch.PREFIX else "%" + pattern


def search_studies(
    name: str,
    *,
    patient_id: str | None = None,
    patient_name: str | None = None,
    name_match: NameMatch = NameMatch.CONTAINS,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> StudyPage:
    """Pulled studies of one integration, newest first, one page at a time.

    The patient ID matches exactly (indexed); the name case-insensitively (ILIKE on
    PostgreSQL; on SQLite for ASCII letters), word by word; dates are inclusive.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"the page size must be between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise InvalidInput("the page offset cannot be negative")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput(
            f"the date range starts after it ends ({date_from} > {date_to})",
            hint="Swap the two dates.",
        )
    integration = get_integration(name)
    selective = bool(patient_id and patient_id.strip()) or bool(date_from or date_to)
    # Without ANALYZE statistics SQLite picks the integration's index over a patient's or a
    # date range's and reads the whole clinic; "+ 0" takes it out of the choice then.
    clinic = Study.integration_id + 0 if selective else Study.integration_id
    where = [clinic == integration.id]
    if patient_id and patient_id.strip():
        where.append(Study.patient_id == patient_id.strip())
    if patient_name and patient_name.strip():
        where.append(col(Study.patient_name).ilike(name_pattern(patient_name, name_match), "\\"))
    # StudyDate is stored as DICOM DA (YYYYMMDD), whose text order is the date order.
    if date_from:
        where.append(col(Study.study_date) >= date_from.strftime("%Y%m%d"))
    if date_to:
        where.append(col(Study.study_date) <= date_to.strftime("%Y%m%d"))
    newest = (col(Study.study_date).desc(), col(Study.study_time).desc(), col(Study.id).desc())
    with store.session() as db:
        total = db.exec(select(func.count()).select_from(Study).where(*where)).one()
        # The page's ids first, then its rows: SQLite sorts and skips narrow rows, so a deep
        # OFFSET stays cheap, and reads only the 50 full rows shown.
        page_ids = select(Study.id).where(*where).order_by(*newest).limit(limit).offset(offset)
        rows = list(db.exec(select(Study).where(col(Study.id).in_(page_ids)).order_by(*newest)))
        uids = [study.study_uid for study in rows]
        pulled = dict(
            db.exec(
                select(Instance.study_uid, func.count())
                .where(Instance.integration_id == integration.id, col(Instance.study_uid).in_(uids))
                .group_by(Instance.study_uid)
            ).all()
        )
    return StudyPage(rows=rows, total=total, pulled=pulled)


def study_contents(name: str, study_uid: str) -> StudyContents:
    """A pulled study with its series (by series number) and their stored instances."""
    integration = get_integration(name)
    check_uid(study_uid, what="Study Instance UID")
    with store.session() as db:
        study = db.exec(
            select(Study).where(
                Study.integration_id == integration.id, Study.study_uid == study_uid
            )
        ).first()
        if study is None:
            raise UnknownStudy(f"no pulled study {study_uid} in {name}")
        series = db.exec(
            select(Series)
            .where(Series.study_id == study.id)
            .order_by(col(Series.series_number), Series.series_uid)
        ).all()
        instances = db.exec(
            select(Instance)
            .where(Instance.integration_id == integration.id, Instance.study_uid == study_uid)
            .order_by(col(Instance.instance_number), Instance.sop_instance_uid)
        ).all()
    by_series: dict[str, list[Instance]] = {}
    for instance in instances:
        by_series.setdefault(instance.series_uid, []).append(instance)
    return StudyContents(
        study=study,
        series=[SeriesContents(s, by_series.get(s.series_uid, [])) for s in series],
    )


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
