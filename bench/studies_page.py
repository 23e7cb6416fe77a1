"""The Studies page with 100k pulled studies: first render and the search behind it (target < 1 s).

  .venv/bin/python bench/studies_page.py

Fills a fresh state folder with 100,000 studies of 5,000 patients over ten years (one bulk
INSERT), then reports the median of 3 runs of:
- the search alone (`search_studies`): the first page, a patient ID, a name, a date range,
  and the last page (the deepest OFFSET);
- the Studies page's first render in `streamlit.testing.v1.AppTest`: a new session, signed
  in, switched to the page, which runs the first-page search and draws the table.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from core import store
from core.browse import PAGE_SIZE, NameMatch, search_studies
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import Study, User, UserRole
from dashboard.auth import SESSION_KEY, SignedIn

STUDIES = 100_000
PATIENTS = 5_000
RUNS = 3
TARGET_S = 1.0
APP = Path(__file__).parents[1] / "dashboard" / "app.py"
SURNAMES = ["Jansen", "Müller", "O'Brien", "Rossi", "Novak", "Silva", "Berg", "Kowalski"]
GIVEN = ["Emma", "Sofia", "Aoife", "Giulia", "Eva", "Ana", "Ingrid", "Zofia"]


def fill(integration_id: int) -> None:
    rng = random.Random(6)
    first_day = date(2016, 1, 1)
    now = store.utcnow()
    rows = []
    for n in range(STUDIES):
        patient = rng.randrange(PATIENTS)
        rows.append(
            {
                "integration_id": integration_id,
                "study_uid": f"1.2.826.0.1.3680043.10.1.{n}",
                "patient_id": f"FC-{patient:05d}",
                "patient_name": f"{SURNAMES[patient % 8]}{patient}^{GIVEN[patient // 8 % 8]}",
                "study_date": (first_day + timedelta(days=rng.randrange(3650))).strftime("%Y%m%d"),
                "study_time": f"{rng.randrange(8, 18):02d}{rng.randrange(60):02d}00",
                "description": "US Transvaginal follicle monitoring",
                "modalities": "US\\SR",
                "remote_instance_count": 5,
                "first_seen_at": now,
            }
        )
    with store.session() as db:
        db.execute(insert(Study), rows)


def median_s(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_render() -> float:
    """Seconds for a new, signed-in session to draw the Studies page."""
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.session_state[SESSION_KEY] = SignedIn("bench", UserRole.VIEWER, time.time())
    app.run()  # the shell and its default page; the switch below is what is timed
    app.switch_page("pages/studies.py")
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    if app.exception or not any("studies found" in c.value for c in app.caption):
        raise SystemExit(f"the Studies page did not render: {app.exception}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pacsbridge-bench-") as home:
        os.environ["PACSBRIDGE_HOME"] = home
        os.environ.pop("DATABASE_URL", None)
        measure()


def measure() -> None:
    integration = add_integration(
        IntegrationSettings(name="bench", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    assert integration.id is not None
    start = time.perf_counter()
    fill(integration.id)
    print(f"filled {STUDIES} studies in {time.perf_counter() - start:.1f} s\n")
    with store.session() as db:
        # A password hash is not needed: the bench signs in through the session state.
        db.add(User(username="bench", password_hash="-", role=UserRole.VIEWER))

    last_page = (STUDIES - 1) // PAGE_SIZE * PAGE_SIZE
    searches = {
        "search: first page, no filter": lambda: search_studies("bench"),
        "search: patient ID": lambda: search_studies("bench", patient_id="FC-01234"),
        "search: name contains 'rossi'": lambda: search_studies("bench", patient_name="rossi"),
        "search: name starts 'novak12'": lambda: search_studies(
            "bench", patient_name="novak12", name_match=NameMatch.PREFIX
        ),
        "search: one month": lambda: search_studies(
            "bench", date_from=date(2020, 3, 1), date_to=date(2020, 3, 31)
        ),
        "search: last page (offset 99,950)": lambda: search_studies("bench", offset=last_page),
    }
    results = {label: median_s(action) for label, action in searches.items()}
    renders = [first_render() for _ in range(RUNS)]
    results["Studies page first render (AppTest)"] = statistics.median(renders)

    print(f"| {STUDIES:,} studies, median of {RUNS} | seconds | < {TARGET_S:g} s |")
    print("| --- | ---: | :---: |")
    for label, seconds in results.items():
        print(f"| {label} | {seconds:.3f} | {'yes' if seconds < TARGET_S else 'NO'} |")


if __name__ == "__main__":
    main()
