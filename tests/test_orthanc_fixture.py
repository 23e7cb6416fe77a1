"""The Orthanc fixture and the synthetic data: the integration tests rely on both."""

import io
import ipaddress
import itertools
import json
import re
import socket
import stat
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pacsbridge.demo import orthanc as orthanc_server
from pacsbridge.demo.orthanc import (
    OrthancRequestError,
    OrthancServer,
    OrthancUnavailable,
    listening_addresses,
)
from pacsbridge.demo.synthetic import basic_sr, expected_frame_bytes, study, us_image

pytestmark = pytest.mark.store_free

DICOM_JSON = {"Accept": "application/dicom+json"}
STORED_FRAMES = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _patient_id() -> str:
    """A patient ID no other test uses, since the server lives for the whole session."""
    return "T" + uuid.uuid4().hex[:12].upper()


def _get(
    orthanc: OrthancServer, path: str, headers: dict[str, str] | None = None
) -> requests.Response:
    response = orthanc.session.get(orthanc.dicomweb_url + path, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _multipart_parts(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related body into (lower-cased headers, body) pairs."""
    match = re.search(r'boundary="?([^";]+)"?', response.headers["Content-Type"])
    assert match, response.headers["Content-Type"]
    chunks = response.content.split(b"--" + match.group(1).encode())[1:-1]
    parts = []
    for chunk in chunks:
        head, _, body = chunk.partition(b"\r\n\r\n")
        lines = head.decode("ascii").strip().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        parts.append((headers, body.removesuffix(b"\r\n")))
    return parts


def _local_non_loopback_addresses() -> list[str]:
    """This machine's own IPv4/IPv6 addresses other than loopback and link-local."""
    addresses = set()
    fib = Path("/proc/net/fib_trie")
    if fib.exists():
        lines = fib.read_text().splitlines()
        for previous, line in itertools.pairwise(lines):
            if line.strip() == "/32 host LOCAL":
                addresses.add(previous.split()[-1])
    inet6 = Path("/proc/net/if_inet6")
    if inet6.exists():
        for row in inet6.read_text().splitlines():
            addresses.add(str(ipaddress.IPv6Address(bytes.fromhex(row.split()[0]))))
    return sorted(
        a
        for a in addresses
        if not (ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_link_local)
    )


def test_requires_credentials(orthanc: OrthancServer) -> None:
    anonymous = requests.get(f"{orthanc.url}/system", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    wrong = requests.get(f"{orthanc.url}/system", auth=(orthanc.username, "wrong"), timeout=10)
    assert wrong.status_code == 401
    dicomweb = requests.get(f"{orthanc.dicomweb_url}studies", timeout=10)
    assert dicomweb.status_code == 401

    system = requests.get(
        f"{orthanc.url}/system", auth=(orthanc.username, orthanc.password), timeout=10
    )
    assert system.status_code == 200
    assert system.json()["HttpPort"] == orthanc.port
    assert "dicom-web" in orthanc.session.get(f"{orthanc.url}/plugins", timeout=10).json()


def test_listens_only_on_loopback(orthanc: OrthancServer) -> None:
    assert Path(f"/proc/{orthanc.pid}/comm").read_text().strip() == "Orthanc"
    assert listening_addresses(orthanc.pid) == {("127.0.0.1", orthanc.port)}


def test_unreachable_on_other_local_addresses(orthanc: OrthancServer) -> None:
    for address in _local_non_loopback_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, orthanc.port), timeout=5).close()


def test_config_is_private_and_has_no_host(orthanc: OrthancServer) -> None:
    path = orthanc.workdir / "orthanc.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text())
    assert "Host" not in config["DicomWeb"]
    assert config["RegisteredUsers"] == {orthanc.username: orthanc.password}
    assert len(orthanc.password) >= 32


def test_uploaded_studies_are_found_by_patient_id(orthanc: OrthancServer) -> None:
    patient_id = _patient_id()
    first = study(
        patient_id=patient_id,
        patient_name="Müller^Eva",
        study_date="20240105",
        n_series=2,
        n_instances=3,
        with_sr=True,
    )
    second = study(patient_id=patient_id, patient_name="Müller^Eva", study_date="20240210")
    ids = orthanc.upload(first + second)
    assert len(set(ids)) == len(first) + len(second) == 9
    assert orthanc.upload(first[:1]) == ids[:1]  # a repeat is "AlreadyStored", same ID

    found = _get(orthanc, f"studies?PatientID={patient_id}&includefield=00081030", DICOM_JSON)
    studies = {s["0020000D"]["Value"][0]: s for s in found.json()}
    assert set(studies) == {first[0].StudyInstanceUID, second[0].StudyInstanceUID}
    first_json = studies[first[0].StudyInstanceUID]
    assert first_json["00100010"]["Value"][0]["Alphabetic"] == "Müller^Eva"
    assert first_json["00081030"]["Value"] == ["US Pelvis"]
    assert first_json["00201206"]["Value"] == [3]  # two US series and one SR series
    assert first_json["00201208"]["Value"] == [7]

    instances = _get(orthanc, f"studies/{first[0].StudyInstanceUID}/instances", DICOM_JSON)
    assert {i["00080018"]["Value"][0] for i in instances.json()} == {
        ds.SOPInstanceUID for ds in first
    }


def test_jpeg_multiframe_instance_keeps_its_frames(orthanc: OrthancServer) -> None:
    ds = us_image(
        patient_id=_patient_id(),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frames=4,
        photometric="RGB",
        jpeg=True,
        seed=3,
    )
    [orthanc_id] = orthanc.upload([ds])
    frames = orthanc.session.get(f"{orthanc.url}/instances/{orthanc_id}/frames", timeout=10)
    assert frames.json() == [0, 1, 2, 3]

    path = (
        f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    parts = _multipart_parts(_get(orthanc, f"{path}/frames/2,4", STORED_FRAMES))
    assert len(parts) == 2
    for (headers, body), number in zip(parts, (2, 4), strict=True):
        assert headers["content-type"].startswith("image/jpeg")
        assert f"transfer-syntax={JPEG_BASELINE}" in headers["content-type"]
        assert body == expected_frame_bytes(ds, number)

    metadata = _get(orthanc, f"{path}/metadata", DICOM_JSON).json()[0]
    assert metadata["00280004"]["Value"] == ["YBR_FULL_422"]
    assert metadata["00280008"]["Value"] == [4]


def test_native_multiframe_frames_come_back_byte_for_byte(orthanc: OrthancServer) -> None:
    ds = us_image(
        patient_id=_patient_id(),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frames=3,
        rows=48,
        columns=40,
        seed=5,
    )
    orthanc.upload([ds])
    path = (
        f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    parts = _multipart_parts(_get(orthanc, f"{path}/frames/1,3", STORED_FRAMES))
    assert [body for _, body in parts] == [expected_frame_bytes(ds, 1), expected_frame_bytes(ds, 3)]
    assert all("transfer-syntax=1.2.840.10008.1.2.1" in h["content-type"] for h, _ in parts)


def test_sr_metadata_keeps_the_nested_content(orthanc: OrthancServer) -> None:
    sr = basic_sr(
        patient_id=_patient_id(),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        length_mm=21.25,
        laterality="Right",
    )
    orthanc.upload([sr])
    path = (
        f"studies/{sr.StudyInstanceUID}/series/{sr.SeriesInstanceUID}/instances/{sr.SOPInstanceUID}"
    )
    root = _get(orthanc, f"{path}/metadata", DICOM_JSON).json()[0]
    assert root["0040A040"]["Value"] == ["CONTAINER"]
    text, group = root["0040A730"]["Value"]
    assert text["0040A160"]["Value"] == ["Synthetic report"]
    num, side = group["0040A730"]["Value"]
    measured = num["0040A300"]["Value"][0]
    assert float(measured["0040A30A"]["Value"][0]) == 21.25
    unit = measured["004008EA"]["Value"][0]
    assert (unit["00080100"]["Value"], unit["00080102"]["Value"]) == (["mm"], ["UCUM"])
    assert side["0040A168"]["Value"][0]["00080104"]["Value"] == ["Right"]


def test_upload_reports_orthancs_message(orthanc: OrthancServer) -> None:
    ds = us_image(patient_id=_patient_id(), study_uid=generate_uid(), series_uid=generate_uid())
    del ds.SeriesInstanceUID
    with pytest.raises(OrthancRequestError, match="Inexistent tag"):
        orthanc.upload([ds])


def test_start_moves_past_taken_ports_and_stop_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listening, socket.socket() as bound_only:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound_only.bind(("127.0.0.1", 0))  # passes the "nothing listens" check; bind fails
        taken = [listening.getsockname()[1], bound_only.getsockname()[1]]
        queue = iter(taken)
        free_port = orthanc_server._free_port
        monkeypatch.setattr(orthanc_server, "_free_port", lambda: next(queue, None) or free_port())

        server = OrthancServer.start(tmp_path)
        try:
            assert server.port not in taken
            assert "already in use" in (tmp_path / f"orthanc.log.port-{taken[1]}").read_text()
            assert server.session.get(f"{server.url}/system", timeout=10).status_code == 200
        finally:
            server.stop()
    server.stop()
    assert not Path(f"/proc/{server.pid}").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/system", timeout=5)


def test_missing_orthanc_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orthanc_server, "ORTHANC_BINARY", tmp_path / "Orthanc")
    with pytest.raises(OrthancUnavailable, match="apt-get install -y orthanc orthanc-dicomweb"):
        OrthancServer.start(tmp_path)


def test_missing_gcc_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OrthancUnavailable, match="apt-get install -y gcc libc6-dev"):
        OrthancServer.start(tmp_path)


def _decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.int16)


def test_pixels_are_deterministic_and_jpeg_matches_native() -> None:
    def image(**kwargs: object) -> Dataset:
        uids = {"study_uid": "1.2.3", "series_uid": "1.2.3.4", "sop_uid": "1.2.3.4.5"}
        return us_image(patient_id="P", frames=3, photometric="RGB", **uids, **kwargs)

    assert image(seed=7).PixelData == image(seed=7).PixelData
    assert image(seed=7).PixelData != image(seed=8).PixelData
    native, compressed = image(seed=7), image(seed=7, jpeg=True)
    assert compressed.file_meta.TransferSyntaxUID == JPEG_BASELINE
    for frame in (1, 3):
        expected = np.frombuffer(expected_frame_bytes(native, frame), np.uint8).reshape(64, 64, 3)
        decoded = _decode(expected_frame_bytes(compressed, frame))
        assert np.abs(decoded - expected).mean() < 4  # lossy, but the same picture


def test_factory_writes_valid_part10_files() -> None:
    datasets = study(
        patient_id="P1", patient_name="O'Brien^Ann", study_date="20250301", with_sr=True
    )
    assert [ds.SOPClassUID.name for ds in datasets] == [
        "Ultrasound Image Storage",
        "Ultrasound Image Storage",
        "Comprehensive SR Storage",
    ]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.AccessionNumber for ds in datasets}) == 1
    for ds in datasets:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        assert buffer.getvalue()[128:132] == b"DICM"
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    multiframe = us_image(patient_id="P", study_uid="1.2", series_uid="1.2.3", frames=2)
    assert multiframe.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert multiframe.NumberOfFrames == 2
