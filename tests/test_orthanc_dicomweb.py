"""The client, the connection test and the diagnosis against a real Orthanc + DICOMweb plugin."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from core.checks.connection_test import run_connection_test
from core.checks.diagnose import diagnose
from core.dicomweb import DicomwebClient, NotDicomweb, NotFound, RequestRejected, RetryPolicy
from core.settings.model import IntegrationSettings
from pacsbridge.demo import synthetic as factory
from pacsbridge.demo.orthanc import OrthancServer
from tests.support.tls_server import closed_port

pytestmark = pytest.mark.store_free

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
NO_RETRY = RetryPolicy(attempts=1)


def upload_studies(
    orthanc: OrthancServer, patient_id: str, dates: list[str], **kwargs: object
) -> list:
    datasets = []
    for day in dates:
        datasets += factory.study(
            patient_id=patient_id, patient_name="Doe^Jane", study_date=day, **kwargs
        )
    orthanc.upload(datasets)
    return datasets


def client_for(settings: IntegrationSettings, secret: str) -> DicomwebClient:
    return DicomwebClient(settings, secret, retry=NO_RETRY)


@pytest.mark.parametrize("study_count", [1, 2, 3])
def test_connection_counts_each_patients_studies(orthanc, clinic, patient_id, study_count):
    dates = ["20250101", "20250203", "20250310"][:study_count]
    upload_studies(orthanc, patient_id, dates)

    result = run_connection_test(clinic, orthanc.password, patient_id)

    assert result.ok, result.error
    assert result.studies == study_count
    assert not result.truncated
    assert result.headline().startswith(f"{study_count} stud")
    assert [s.study_date for s in result.found] == sorted(dates, reverse=True)
    assert all(s.description == "US Pelvis" and s.series_count == 1 for s in result.found)


def test_connection_for_unknown_patient_is_green_with_zero(orthanc, clinic, patient_id):
    result = run_connection_test(clinic, orthanc.password, patient_id)

    assert result.ok
    assert result.studies == 0
    assert result.to_json()["error"] is None


def test_connection_with_wrong_password_is_an_authentication_error(orthanc, clinic, patient_id):
    result = run_connection_test(clinic, "not-the-password", patient_id)

    assert not result.ok
    assert result.studies is None
    assert "401" in result.error
    assert "password" in result.error


def test_base_uri_without_dicom_web_is_reported_as_not_dicomweb(orthanc, clinic, patient_id):
    root = clinic.model_copy(update={"base_uri": orthanc.url + "/"})

    with client_for(root, orthanc.password) as client, pytest.raises(NotDicomweb) as caught:
        client.search_studies(patient_id=patient_id)

    # Orthanc's own REST API answers /studies?limit=… with 400 'Missing "since" argument'.
    assert "rejected a standard QIDO-RS search" in str(caught.value)
    assert "since" in str(caught.value)
    assert "/dicom-web/" in caught.value.hint


def test_wrong_path_under_the_server_is_not_found_with_a_hint(orthanc, clinic, patient_id):
    wrong = clinic.model_copy(update={"base_uri": orthanc.url + "/dicomweb/"})

    result = run_connection_test(wrong, orthanc.password, patient_id)

    assert not result.ok
    assert "404" in result.error
    assert "base URI" in result.error


def test_closed_port_is_unreachable(orthanc, clinic, patient_id):
    with closed_port() as port:
        closed = clinic.model_copy(update={"base_uri": f"http://127.0.0.1:{port}/dicom-web/"})
        result = run_connection_test(closed, orthanc.password, patient_id)

    assert not result.ok
    assert "refused" in result.error


@pytest.mark.parametrize(
    ("wanted", "lookalike"),
    [("Q^A B", "QxAyB"), ("Q,1", "Q;1"), ("Q*1", "Q*11"), ("Müller-7", "Mxller-7")],
)
def test_patient_ids_with_special_characters_match_exactly(
    orthanc, clinic, patient_id, wanted, lookalike
):
    # Orthanc 1.10.1 does not percent-decode queries: these IDs go out with '?' wildcards and
    # the client keeps only exact matches.
    wanted_id, lookalike_id = patient_id + wanted, patient_id + lookalike
    upload_studies(orthanc, wanted_id, ["20250101", "20250102"])
    upload_studies(orthanc, lookalike_id, ["20250103"])

    result = run_connection_test(clinic, orthanc.password, wanted_id)

    assert result.ok, result.error
    assert result.studies == 2
    assert {s.patient_id for s in result.found} == {wanted_id}
    assert any("matched exactly" in w for w in result.warnings)


def test_paging_collects_every_study_across_short_pages(orthanc, clinic, patient_id):
    upload_studies(orthanc, patient_id, [f"202501{day:02d}" for day in range(1, 6)])
    paged = clinic.model_copy(update={"page_size": 2})

    with client_for(paged, orthanc.password) as client:
        result = client.search_studies(patient_id=patient_id)

    assert len(result) == 5
    assert result.requests == 3  # 2 + 2 + 1: the short page ends the walk
    assert len({m["0020000D"]["Value"][0] for m in result.matches}) == 5


def test_series_and_instances_of_a_study(orthanc, clinic, patient_id):
    datasets = upload_studies(
        orthanc, patient_id, ["20250101"], n_series=2, n_instances=3, with_sr=True
    )
    study_uid = datasets[0].StudyInstanceUID

    with client_for(clinic, orthanc.password) as client:
        series = client.search_series(study_uid, includefields=["00080060"])
        instances = [
            client.search_instances(study_uid, s["0020000E"]["Value"][0]) for s in series.matches
        ]

    modalities = sorted(s["00080060"]["Value"][0] for s in series.matches)
    assert modalities == ["SR", "US", "US"]
    assert sorted(len(i) for i in instances) == [1, 3, 3]


def test_sr_metadata_arrives_as_a_dataset_with_nested_content(orthanc, clinic, patient_id):
    datasets = upload_studies(orthanc, patient_id, ["20250101"], with_sr=True)
    sr = next(d for d in datasets if d.Modality == "SR")

    with client_for(clinic, orthanc.password) as client:
        metadata = client.instance_metadata(
            sr.StudyInstanceUID, sr.SeriesInstanceUID, sr.SOPInstanceUID
        )

    assert metadata.SOPInstanceUID == sr.SOPInstanceUID
    group = next(item for item in metadata.ContentSequence if item.ValueType == "CONTAINER")
    number = next(item for item in group.ContentSequence if item.ValueType == "NUM")
    measured = number.MeasuredValueSequence[0]
    assert float(measured.NumericValue) == pytest.approx(18.5)
    assert measured.MeasurementUnitsCodeSequence[0].CodeValue == "mm"


def _frame_request(orthanc, clinic, tmp_path, dataset, frames):
    with client_for(clinic, orthanc.password) as client:
        return client.save_frames(
            dataset.StudyInstanceUID,
            dataset.SeriesInstanceUID,
            dataset.SOPInstanceUID,
            frames,
            tmp_path / "frames",
        )


def test_single_native_frame_is_streamed_as_stored(orthanc, clinic, patient_id, tmp_path):
    (image,) = upload_studies(orthanc, patient_id, ["20250101"], n_instances=1)

    (saved,) = _frame_request(orthanc, clinic, tmp_path, image, [1])

    assert saved.path.read_bytes() == factory.expected_frame_bytes(image, 1)
    assert saved.transfer_syntax == EXPLICIT_VR_LE
    assert not list((tmp_path / "frames").glob("*.partial"))


def test_frame_list_of_a_cine_loop_comes_in_one_multipart_body(
    orthanc, clinic, patient_id, tmp_path
):
    (loop,) = upload_studies(orthanc, patient_id, ["20250101"], n_instances=1, frames=6)

    saved = _frame_request(orthanc, clinic, tmp_path, loop, [1, 2, 3, 4, 5, 6])

    assert [s.frame_number for s in saved] == [1, 2, 3, 4, 5, 6]
    for frame in saved:
        assert frame.path.read_bytes() == factory.expected_frame_bytes(loop, frame.frame_number)


def test_compressed_frames_arrive_as_the_stored_jpeg_bitstream(
    orthanc, clinic, patient_id, tmp_path
):
    (loop,) = upload_studies(
        orthanc, patient_id, ["20250101"], n_instances=1, frames=3, jpeg=True, photometric="RGB"
    )

    saved = _frame_request(orthanc, clinic, tmp_path, loop, [1, 2, 3])

    assert {s.transfer_syntax for s in saved} == {JPEG_BASELINE}
    assert {s.media_type for s in saved} == {"image/jpeg"}
    for frame in saved:
        data = frame.path.read_bytes()
        assert data[:2] == b"\xff\xd8"  # a JPEG, not 64×64×3 decoded pixels
        assert data == factory.expected_frame_bytes(loop, frame.frame_number)


def test_frame_number_out_of_range_is_a_request_error(orthanc, clinic, patient_id, tmp_path):
    (image,) = upload_studies(orthanc, patient_id, ["20250101"], n_instances=1)

    with pytest.raises(RequestRejected) as caught:
        _frame_request(orthanc, clinic, tmp_path, image, [2])

    assert caught.value.status == 400
    assert not list((tmp_path / "frames").glob("*"))


def test_absolute_urls_from_behind_a_proxy_are_mapped_onto_the_base_uri(
    orthanc, clinic, patient_id
):
    (image,) = upload_studies(orthanc, patient_id, ["20250101"], n_instances=1)

    with client_for(clinic, orthanc.password) as client:
        # A reverse proxy that forwards its own Host makes Orthanc name itself by it.
        client.session.headers["Host"] = "pacs.internal.example:9999"
        (study,) = client.search_studies(patient_id=patient_id).matches
        retrieve_url = study["00081190"]["Value"][0]
        del client.session.headers["Host"]
        rebased = client.rebase(retrieve_url)
        metadata = client.transport.get(
            rebased + "/metadata", headers={"Accept": "application/dicom+json"}
        )

    assert retrieve_url.startswith("http://pacs.internal.example:9999/dicom-web/studies/")
    assert rebased == f"{orthanc.dicomweb_url}studies/{image.StudyInstanceUID}"
    assert metadata.json()[0]["00080018"]["Value"] == [image.SOPInstanceUID]


def test_unknown_study_metadata_is_not_found(orthanc, clinic):
    uid = generate_uid()
    with client_for(clinic, orthanc.password) as client, pytest.raises(NotFound) as caught:
        client.instance_metadata(uid, uid, uid)

    assert "inexistent" in str(caught.value).lower()


def test_diagnosis_of_a_working_integration_passes_every_step(orthanc, clinic, patient_id):
    upload_studies(orthanc, patient_id, ["20250101"], with_sr=True)

    result = diagnose(clinic, orthanc.password, patient_id=patient_id)

    assert result.ok, result.to_json()
    by_name = {step.name: step for step in result.steps}
    assert by_name["TLS"].ok is None
    assert "plain HTTP" in by_name["TLS"].detail
    assert by_name["Search (QIDO-RS)"].detail == f"1 study for patient {patient_id}"
    assert "transfer syntax 1.2.840.10008.1.2.1" in by_name["Frame (WADO-RS)"].detail
    assert all(step.elapsed_ms is not None for step in result.steps)


def test_diagnosis_stops_explaining_at_the_failed_login(orthanc, clinic, patient_id):
    result = diagnose(clinic, "wrong", patient_id=patient_id)

    assert not result.ok
    names = [step.name for step in result.steps if step.ok is False]
    assert names == ["Authentication"]
    failed = result.steps[3]
    assert "401" in failed.detail
    assert "password" in failed.hint
    assert all(step.detail.startswith("not run") for step in result.steps[4:])
    assert [step.ok for step in result.steps[:2]] == [True, True]


def test_diagnosis_without_a_patient_searches_recent_studies(orthanc, clinic):
    result = diagnose(clinic, orthanc.password)

    search = result.steps[4]
    assert search.ok
    assert "studies since" in search.detail
