"""Removing an integration: its rows, then its pulled files; and its id is never given again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from core import files, store
from core.errors import PacsbridgeError
from core.integrations import add_integration, get_integration, remove_integration
from core.settings.model import IntegrationSettings
from core.store import Instance, Integration, Study, SyncScope
from core.store._schema import STEPS
from core.sync import SyncOrder, run_sync
from core.viewer import thumbnail_file
from pacsbridge.cli import main
from pacsbridge.demo import synthetic as factory


def pulled_folder(pacsbridge_home: Path, name: str) -> Path:
    return pacsbridge_home / files.integration_dir(get_integration(name).id)


def instances_of(integration_id: int) -> list[Instance]:
    with store.session() as db:
        return list(db.exec(select(Instance).where(Instance.integration_id == integration_id)))


@pytest.fixture
def two_synced(orthanc, clinic, patient_id) -> list[str]:
    """ "clinic" and "twin", both pointing at the session's Orthanc, each with one pulled image."""
    orthanc.upload(
        [
            factory.us_image(
                patient_id=patient_id, study_uid=generate_uid(), series_uid=generate_uid()
            )
        ]
    )
    names = [clinic.name, "twin"]
    for name in names:
        add_integration(clinic.model_copy(update={"name": name}), orthanc.password)
        assert run_sync(name, SyncOrder(scope=SyncScope.PATIENT, value=patient_id)).ok
    return names


def test_removing_an_integration_deletes_its_pulled_files_and_only_those(
    two_synced, pacsbridge_home, capsys
):
    removed, kept = two_synced
    folder = pulled_folder(pacsbridge_home, removed)
    removed_id = get_integration(removed).id
    assert list(folder.rglob(files.FRAMES_NAME))
    assert all(thumbnail_file(row) for row in instances_of(removed_id))  # a page showed them
    assert list(folder.rglob(files.THUMBNAIL_NAME))

    assert main(["integrations", "remove", removed, "--yes"]) == 0

    assert not folder.exists()
    assert instances_of(removed_id) == []
    assert list(pulled_folder(pacsbridge_home, kept).rglob(files.FRAMES_NAME))
    assert len(instances_of(get_integration(kept).id)) == 1


def test_files_go_after_the_rows_so_a_failure_leaves_no_row_without_its_file(
    two_synced, pacsbridge_home, monkeypatch
):
    removed = two_synced[0]
    folder = pulled_folder(pacsbridge_home, removed)
    removed_id = get_integration(removed).id

    def cut_off(path: Path) -> None:
        assert instances_of(removed_id) == []  # the rows are gone before any file is touched
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "rmtree", cut_off)
    with pytest.raises(PacsbridgeError) as caught:
        remove_integration(removed)

    assert "its pulled files could not be deleted (Permission denied)" in str(caught.value)
    assert f"Delete {folder} by hand" in caught.value.hint
    assert list(folder.rglob(files.FRAMES_NAME))


def settings(name: str) -> IntegrationSettings:
    return IntegrationSettings(name=name, base_uri="https://pacs.example/dicom-web/")


def test_the_id_of_a_removed_integration_is_never_given_again():
    add_integration(settings("first"), None)
    last = add_integration(settings("last"), None)
    remove_integration("last")

    again = add_integration(settings("next"), None)

    assert again.id > last.id


def test_an_older_sqlite_store_is_rebuilt_to_never_reuse_ids_and_keeps_its_rows(
    pacsbridge_home, monkeypatch
):
    pacsbridge_home.mkdir(mode=0o700, parents=True)
    engine = create_engine(f"sqlite:///{pacsbridge_home / 'pacsbridge.db'}")
    # The table as it was created before ids were kept from reuse: without AUTOINCREMENT.
    with monkeypatch.context() as before, engine.begin() as connection:
        sqlite_options = Integration.__table__.dialect_options["sqlite"]
        before.setitem(sqlite_options._non_defaults, "autoincrement", False)
        for step in STEPS[:-1]:
            step(connection)
        connection.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO schema_version VALUES (:v)"), {"v": len(STEPS) - 1})
    with Session(engine) as db:
        kept, removed = Integration.model_validate(settings("kept")), settings("removed")
        db.add_all([kept, Integration.model_validate(removed)])
        db.flush()
        db.add(Study(integration_id=kept.id, study_uid="1.2.3", patient_id="P1"))
        db.commit()
    engine.dispose()

    last = get_integration("removed")
    remove_integration("removed")
    again = add_integration(settings("next"), None)

    assert again.id > last.id
    with store.session() as db:
        assert [s.study_uid for s in db.exec(select(Study))] == ["1.2.3"]
    remove_integration("kept")  # the pulled rows still follow their integration
    with store.session() as db:
        assert list(db.exec(select(Study))) == []
