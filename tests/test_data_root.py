"""Pulled files under a data root of their own (`$PACSBRIDGE_DATA`), found by relative paths
from any host that mounts it wherever it likes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlmodel import select

from core import files, store
from core.errors import UnsafePermissions
from core.integrations import add_integration
from core.store import Instance, SyncScope
from core.sync import SyncOrder, run_sync
from core.viewer import render_frame
from pacsbridge.demo import synthetic as factory


def test_a_worker_and_a_dashboard_with_the_data_root_mounted_elsewhere_share_the_files(
    orthanc, clinic, patient_id, pacsbridge_home, tmp_path, monkeypatch
):
    worker_mount = tmp_path / "worker-host" / "pacsbridge-data"
    worker_mount.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("PACSBRIDGE_DATA", str(worker_mount))
    orthanc.upload(
        [
            factory.us_image(
                patient_id=patient_id,
                study_uid=generate_uid(),
                series_uid=generate_uid(),
                frames=3,
            )
        ]
    )
    add_integration(clinic, orthanc.password)

    assert run_sync(clinic.name, SyncOrder(scope=SyncScope.PATIENT, value=patient_id)).ok

    with store.session() as db:
        (instance,) = db.exec(select(Instance)).all()
    assert not Path(instance.files_path).is_absolute()
    assert str(worker_mount) not in instance.files_path
    assert (worker_mount / instance.files_path).is_dir()
    assert not (pacsbridge_home / "files").exists()  # nothing went to the default place

    # The dashboard's host mounts the same files at another path.
    dashboard_mount = tmp_path / "dashboard-host" / "mnt" / "pacs-files"
    shutil.copytree(worker_mount, dashboard_mount)
    monkeypatch.setenv("PACSBRIDGE_DATA", str(dashboard_mount))

    pixels = render_frame(instance.id, 3)

    assert pixels.shape[:2] == (instance.rows, instance.columns)


def test_a_data_root_open_to_others_is_refused_with_the_fix(tmp_path, monkeypatch):
    shared = tmp_path / "shared-data"
    shared.mkdir()
    shared.chmod(0o755)
    monkeypatch.setenv("PACSBRIDGE_DATA", str(shared))

    with pytest.raises(UnsafePermissions) as refused:
        files.absolute("1")

    assert str(shared) in str(refused.value)
    assert refused.value.hint.startswith(f"Run `chmod -R go= {shared}`")
