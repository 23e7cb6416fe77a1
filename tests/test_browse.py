"""core.browse: the Studies page's search (filters, paging, counts) and study contents."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert

from core import store
from core.browse import (
    NameMatch,
    UnknownStudy,
    name_pattern,
    run_duration,
    search_studies,
    study_contents,
)
from core.errors import InvalidInput, UnknownIntegration
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import Instance, Series, Study, SyncRun

PATIENTS = [
    ("FC-1001", "Jansen^Emma"),
    ("FC-1002", "Müller^Sofia"),
    ("FC-1003", "O'Brien^Aoife"),
    ("FC-1004", "Emmanuel^Ruth"),
    ("FC-1005", "100%_Test^Name"),
]


def add_clinic(name: str) -> int:
    integration = add_integration(
        IntegrationSettings(name=name, base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    assert integration.id is not None
    return integration.id


@pytest.fixture
def clinic() -> int:
    """30 studies: 6 per patient on the days 2026-11-01 … 2026-11-30; and another clinic."""
    integration_id = add_clinic("clinic")
    rows = [
        {
            "integration_id": integration_id,
            "study_uid": f"1.2.826.0.1.{day}",
            "patient_id": PATIENTS[day % 5][0],
            "patient_name": PATIENTS[day % 5][1],
            "study_date": f"202611{day:02d}",
            "study_time": "093000",
            "first_seen_at": store.utcnow(),
        }
        for day in range(1, 31)
    ]
    other = add_clinic("other")
    rows.append({**rows[0], "integration_id": other, "first_seen_at": store.utcnow()})
    with store.session() as db:
        db.execute(insert(Study), rows)
    return integration_id


def uids(page) -> list[str]:
    return [study.study_uid for study in page.rows]


def test_everything_newest_first_with_the_total(clinic):
    page = search_studies("clinic", limit=10)
    assert page.total == 30
    assert uids(page) == [f"1.2.826.0.1.{day}" for day in range(30, 20, -1)]


def test_pages_cover_every_study_once(clinic):
    seen = [
        uid
        for offset in (0, 7, 14, 21, 28)
        for uid in uids(search_studies("clinic", limit=7, offset=offset))
    ]
    assert len(seen) == len(set(seen)) == 30
    last = search_studies("clinic", limit=7, offset=28)
    assert (len(last.rows), last.total) == (2, 30)
    beyond = search_studies("clinic", limit=7, offset=70)
    assert (beyond.rows, beyond.total) == ([], 30)


def test_patient_id_matches_exactly(clinic):
    page = search_studies("clinic", patient_id=" FC-1002 ")
    assert page.total == 6
    assert {s.patient_id for s in page.rows} == {"FC-1002"}
    assert search_studies("clinic", patient_id="FC-100").total == 0


@pytest.mark.parametrize(
    ("words", "match", "names"),
    [
        ("jansen", NameMatch.PREFIX, {"Jansen^Emma"}),
        ("emma", NameMatch.PREFIX, {"Emmanuel^Ruth"}),
        ("emma", NameMatch.CONTAINS, {"Jansen^Emma", "Emmanuel^Ruth"}),
        ("jansen emma", NameMatch.CONTAINS, {"Jansen^Emma"}),
        ("JANSEN^EMMA", NameMatch.PREFIX, {"Jansen^Emma"}),
        ("emma jansen", NameMatch.CONTAINS, set()),  # the words in their stored order
        ("o'brien", NameMatch.PREFIX, {"O'Brien^Aoife"}),
        ("100%", NameMatch.PREFIX, {"100%_Test^Name"}),
        ("0%_t", NameMatch.CONTAINS, {"100%_Test^Name"}),  # wildcards match themselves
        ("_", NameMatch.CONTAINS, {"100%_Test^Name"}),
    ],
)
def test_patient_name(clinic, words, match, names):
    page = search_studies("clinic", patient_name=words, name_match=match)
    assert {s.patient_name for s in page.rows} == names
    assert page.total == 6 * len(names)


def test_date_range_is_inclusive_and_combines_with_other_filters(clinic):
    page = search_studies("clinic", date_from=date(2026, 11, 10), date_to=date(2026, 11, 19))
    assert page.total == 10
    assert {s.study_date for s in page.rows} == {f"202611{d}" for d in range(10, 20)}
    assert search_studies("clinic", date_from=date(2026, 11, 30)).total == 1
    assert search_studies("clinic", date_to=date(2026, 11, 2)).total == 2
    both = search_studies(
        "clinic", patient_id="FC-1001", date_from=date(2026, 11, 1), date_to=date(2026, 11, 15)
    )
    assert {s.study_date for s in both.rows} == {"20261105", "20261110", "20261115"}


def test_other_integrations_are_not_searched(clinic):
    assert search_studies("other").total == 1
    with pytest.raises(UnknownIntegration):
        search_studies("nobody")


def test_bad_input_is_refused(clinic):
    with pytest.raises(InvalidInput, match="starts after it ends"):
        search_studies("clinic", date_from=date(2026, 11, 2), date_to=date(2026, 11, 1))
    with pytest.raises(InvalidInput, match="page size"):
        search_studies("clinic", limit=0)
    with pytest.raises(InvalidInput, match="offset"):
        search_studies("clinic", offset=-1)


def test_name_pattern_escapes_wildcards():
    assert name_pattern(" van  der^Berg ", NameMatch.PREFIX) == "van%der%Berg%"
    assert name_pattern("a%b_c\\", NameMatch.CONTAINS) == "%a\\%b\\_c\\\\%"


def test_page_counts_pulled_instances(clinic):
    with store.session() as db:
        study = search_studies("clinic", limit=1).rows[0]
        series = Series(
            integration_id=clinic, study_id=study.id, study_uid=study.study_uid, series_uid="1.2.9"
        )
        db.add(series)
        db.flush()
        for n in (2, 1):
            db.add(
                Instance(
                    integration_id=clinic,
                    series_id=series.id,
                    study_uid=study.study_uid,
                    series_uid="1.2.9",
                    sop_instance_uid=f"1.2.9.{n}",
                    instance_number=n,
                )
            )
    page = search_studies("clinic", limit=2)
    assert page.pulled == {study.study_uid: 2}
    contents = study_contents("clinic", study.study_uid)
    assert contents.study.study_uid == study.study_uid
    assert [i.instance_number for i in contents.series[0].instances] == [1, 2]
    with pytest.raises(UnknownStudy):
        study_contents("other", "1.2.826.0.1.30")


def test_run_duration_of_finished_and_running_runs():
    started = datetime(2026, 11, 5, 9, 0)
    finished = SyncRun(integration_id=1, trigger="cli", started_at=started)
    finished.finished_at = started + timedelta(seconds=90)
    assert run_duration(finished) == timedelta(seconds=90)
    running = SyncRun(integration_id=1, trigger="cli", started_at=started)
    assert run_duration(running, now=started + timedelta(minutes=5)) == timedelta(minutes=5)
