"""The demo clinic: a local Orthanc seeded with a synthetic fertility clinic's ultrasound.

Lets a newcomer see pacsbridge work end to end without a real PACS: the data live under
`$PACSBRIDGE_HOME/demo-pacs` (kept between runs, seeded once) and the integration
`demo-clinic` points at the server with a fresh random password each start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset
from pydicom.uid import generate_uid

from pacsbridge.core.demo import synthetic
from pacsbridge.core.demo.orthanc import OrthancServer
from pacsbridge.core.errors import UnknownIntegration
from pacsbridge.core.home import pacsbridge_home
from pacsbridge.core.integration import IntegrationSettings
from pacsbridge.core.integrations import add_integration, edit_integration, get_integration
from pacsbridge.core.presets import AuthKind

DEMO_INTEGRATION = "demo-clinic"


@dataclass(frozen=True)
class DemoPatient:
    patient_id: str
    name: str
    scan_dates: tuple[str, ...]


# A stimulation cycle is scanned every two or three days; the last patient is pregnant.
DEMO_PATIENTS = (
    DemoPatient("FC-1001", "Jansen^Emma", ("20261102", "20261105", "20261107", "20261109")),
    DemoPatient("FC-1002", "Müller^Sofia", ("20261103", "20261106", "20261108")),
    DemoPatient("FC-1003", "O'Brien^Aoife", ("20261020", "20261112")),
)


def demo_datasets() -> list[Dataset]:
    """Every patient's scans: two US images per visit, a cine loop and a report on the last."""
    datasets: list[Dataset] = []
    for patient in DEMO_PATIENTS:
        for index, day in enumerate(patient.scan_dates):
            last = index == len(patient.scan_dates) - 1
            datasets += synthetic.study(
                patient_id=patient.patient_id,
                patient_name=patient.name,
                study_date=day,
                study_description="US Transvaginal follicle monitoring",
                n_instances=2,
                rows=240,
                columns=320,
                with_sr=last,
            )
            if last:
                study_uid = datasets[-1].StudyInstanceUID
                datasets.append(
                    synthetic.us_image(
                        patient_id=patient.patient_id,
                        patient_name=patient.name,
                        study_uid=study_uid,
                        series_uid=generate_uid(),
                        study_date=day,
                        series_number=3,
                        study_description="US Transvaginal follicle monitoring",
                        rows=240,
                        columns=320,
                        frames=20,
                        jpeg=True,
                        photometric="RGB",
                    )
                )
    return datasets


def start_demo_pacs(home: Path | None = None) -> OrthancServer:
    """Start the demo Orthanc on a free loopback port; seed it on first use."""
    workdir = (home or pacsbridge_home()) / "demo-pacs"
    first_start = not (workdir / "index").exists()
    server = OrthancServer.start(workdir)
    if first_start:
        server.upload(demo_datasets())
    return server


def register_demo_integration(server: OrthancServer) -> IntegrationSettings:
    """Create or update `demo-clinic` to point at this run's port and password."""
    changes = {
        "base_uri": server.dicomweb_url,
        "auth_kind": AuthKind.BASIC,
        "username": server.username,
    }
    try:
        get_integration(DEMO_INTEGRATION)
    except UnknownIntegration:
        return add_integration(
            IntegrationSettings(name=DEMO_INTEGRATION, **changes), server.password
        )
    return edit_integration(DEMO_INTEGRATION, changes, server.password)
