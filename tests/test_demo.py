"""The demo clinic's content, and the run command's pieces that need no browser."""

from __future__ import annotations

import hashlib
import itertools
import socket
import stat
import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.uid import JPEGBaseline8Bit

from core.sr import MeasurementRow, extract_measurements
from core.users import FIRST_ADMIN, verify_login
from pacsbridge.cli import main
from pacsbridge.cli._dashboard import announce_first_admin, ensure_first_admin
from pacsbridge.demo.clinic import DEMO_PATIENTS, demo_datasets

TODAY = date(2026, 3, 20)
STIMULATED = [p.patient_id for p in DEMO_PATIENTS if not p.pregnant]
PREGNANT = [p.patient_id for p in DEMO_PATIENTS if p.pregnant]


@pytest.fixture(scope="module")
def clinic() -> list[Dataset]:
    return demo_datasets(TODAY)


def reports(clinic: list[Dataset], patient_id: str) -> list[Dataset]:
    """The patient's reports, oldest first."""
    found = [ds for ds in clinic if ds.Modality == "SR" and ds.PatientID == patient_id]
    return sorted(found, key=lambda ds: ds.StudyDate)


def reported(rows: tuple[MeasurementRow, ...], kind: str) -> list[MeasurementRow]:
    return [row for row in rows if row.kind == kind and row.reported]


def follicle_sizes(visits: list[Dataset]) -> dict[tuple[str | None, str | None], list[float]]:
    """Reported diameter of each follicle (side, number) on each visit, in visit order."""
    sizes: dict[tuple[str | None, str | None], list[float]] = defaultdict(list)
    for report in visits:
        for row in reported(extract_measurements(report).rows, "follicle_diameter"):
            assert row.value is not None
            sizes[(row.laterality, row.group)].append(row.value)
    return sizes


@pytest.mark.parametrize("patient_id", STIMULATED)
def test_leading_follicle_grows_to_trigger_size(clinic, patient_id):
    visits = reports(clinic, patient_id)
    assert len(visits) >= 4
    dates = [date.fromisoformat(report.StudyDate) for report in visits]
    gaps = [(b - a).days for a, b in itertools.pairwise(dates)]
    assert all(2 <= gap <= 3 for gap in gaps), gaps  # scanned every two or three days
    sizes = follicle_sizes(visits)
    leading = max(sizes.values(), key=lambda values: values[-1])
    assert len(leading) == len(visits)
    growth = [(b - a) / gap for (a, b), gap in zip(itertools.pairwise(leading), gaps, strict=True)]
    assert all(1.5 <= per_day <= 2.0 for per_day in growth), (leading, growth)
    assert 18.0 <= leading[-1] <= 20.0, leading


@pytest.mark.parametrize("patient_id", STIMULATED)
def test_every_follicle_keeps_its_number_and_grows(clinic, patient_id):
    sizes = follicle_sizes(reports(clinic, patient_id))
    assert {side for side, _ in sizes} == {"left", "right"}
    for follicle, values in sizes.items():
        assert values == sorted(values), follicle


def test_follicle_monitoring_reports_read_cleanly_per_side(clinic):
    for patient_id in STIMULATED:
        previous_endometrium = 0.0
        for report in reports(clinic, patient_id):
            result = extract_measurements(report)
            assert result.warnings == ()
            rows = result.rows
            diameters = reported(rows, "follicle_diameter")
            assert {r.laterality for r in diameters} == {"left", "right"}
            assert all(r.unit == "mm" and r.reported_by == "mean" for r in diameters)
            counts = {r.laterality: r.value for r in reported(rows, "follicle_count")}
            for side in ("left", "right"):
                measured = sum(1 for r in diameters if r.laterality == side)
                assert counts[side] >= measured  # small follicles are counted, not measured
            ovaries = {r.laterality for r in reported(rows, "ovary_volume")}
            assert ovaries == {"left", "right"}
            (endometrium,) = reported(rows, "endometrium_thickness")
            assert endometrium.value is not None
            assert endometrium.value > previous_endometrium
            previous_endometrium = endometrium.value


def test_early_pregnancy_reports(clinic):
    (patient_id,) = PREGNANT
    first, last = (extract_measurements(r).rows for r in reports(clinic, patient_id))
    for rows in (first, last):
        kinds = {r.kind for r in rows if r.reported}
        assert {"crl", "gestational_sac_diameter", "yolk_sac_diameter", "fetal_heart_rate"} <= kinds

    def value(rows: tuple[MeasurementRow, ...], kind: str) -> float | None:
        return next(r.value for r in rows if r.kind == kind and r.reported)

    assert value(first, "crl") < value(last, "crl")  # the embryo grows between the scans
    assert 100 <= value(last, "fetal_heart_rate") <= 180


def test_studies_have_reports_images_jpeg_and_a_cine_loop(clinic):
    studies: dict[str, list[Dataset]] = defaultdict(list)
    for ds in clinic:
        studies[ds.StudyInstanceUID].append(ds)
    for objects in studies.values():
        modalities = sorted(ds.Modality for ds in objects)
        assert modalities.count("SR") == 1
        assert modalities.count("US") >= 2
    images = [ds for ds in clinic if ds.Modality == "US"]
    assert any(ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit for ds in images)
    assert any(not ds.file_meta.TransferSyntaxUID.is_compressed for ds in images)
    loops = [ds for ds in images if int(ds.get("NumberOfFrames", 1)) > 1]
    assert loops
    assert all(ds.pixel_array.shape[0] == ds.NumberOfFrames for ds in loops)


def test_study_dates_are_a_recent_cycle(clinic):
    dates = {date.fromisoformat(ds.StudyDate) for ds in clinic}
    assert max(dates) < TODAY
    assert min(dates) >= TODAY - timedelta(days=21)


def uid_fingerprint(datasets: list[Dataset]) -> list[tuple[str, str, str]]:
    return [(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) for ds in datasets]


def test_uids_are_new_valid_and_the_same_on_every_generation(clinic):
    uids = [uid for triple in uid_fingerprint(clinic) for uid in triple]
    assert all(uid.startswith("2.25.") and len(uid) <= 64 for uid in uids)
    assert len({ds.SOPInstanceUID for ds in clinic}) == len(clinic)
    # Seeding again, even on another day, yields the same objects, not a second clinic.
    assert uid_fingerprint(demo_datasets(TODAY + timedelta(days=30))) == uid_fingerprint(clinic)


def test_pixels_are_deterministic(clinic):
    again = demo_datasets(TODAY)

    def digest(datasets: list[Dataset]) -> list[str]:
        return [hashlib.sha256(ds.PixelData).hexdigest() for ds in datasets if "PixelData" in ds]

    assert digest(again) == digest(clinic)


def test_first_admin_is_created_once(pacsbridge_home):
    password_file = ensure_first_admin()

    assert password_file == pacsbridge_home / "first-admin-password"
    password = password_file.read_text().strip()
    user = verify_login(FIRST_ADMIN, password)
    assert user is not None
    assert user.is_admin
    assert ensure_first_admin() is None  # an existing account is never replaced


def test_the_first_password_is_left_in_a_private_file_never_printed(
    pacsbridge_home, monkeypatch, capsys
):
    # Left over from an earlier install, readable by everyone: replaced, not reused.
    pacsbridge_home.mkdir(mode=0o700, parents=True)
    (pacsbridge_home / "first-admin-password").write_text("old\n")
    (pacsbridge_home / "first-admin-password").chmod(0o644)

    password_file = ensure_first_admin()
    announce_first_admin(password_file)

    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    assert password not in printed.out + printed.err
    assert f"Its password is in {password_file}" in printed.out
    # Setting one's own password retires the file.
    monkeypatch.setenv("PACSBRIDGE_SECRET", "a-password-of-my-own")
    assert main(["users", "password", FIRST_ADMIN]) == 0
    assert not password_file.exists()
    assert verify_login(FIRST_ADMIN, "a-password-of-my-own") is not None


def test_dashboard_refuses_a_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error
    assert "--port" in error


def test_demo_check_only_starts_the_pacs_and_finds_the_first_patient(pacsbridge_home: Path):
    command = Path(sys.executable).with_name("pacsbridge")
    result = subprocess.run(
        [str(command), "demo", "--check-only"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test connection: 5 studies found for patient FC-1001" in result.stdout
    assert (pacsbridge_home / "demo-pacs" / "seeded").exists()
