"""Removing an integration: its rows, then its pulled files; and its id is never given again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, text
from sqlmodel import select

from core import files, store
from core.errors import PacsbridgeError
from core.integrations import add_integration, get_integration, remove_integration
from core.settings.model import IntegrationSettings
from core.store import Instance, Study, SyncScope
from core.store._schema import MIGRATIONS
from core.sync import SyncOrder, run_sync
from core.viewer import thumbnail_file
from pacsbridge.cli import main
from pacsbridge.demo import synthetic as factory


def pulled_folder(pacsbridge_home: Path, name: str) -> Path:
    return files.absolute(files.integration_dir(get_integration(name).id))


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


@pytest.mark.sqlite_only
def test_an_older_sqlite_store_is_rebuilt_to_never_reuse_ids_and_keeps_its_rows(pacsbridge_home):
    # A store at the revision before ids were kept from reuse: no AUTOINCREMENT yet.
    pacsbridge_home.mkdir(mode=0o700, parents=True)
    url = store.database_url()
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
    with engine.connect() as connection:
        created = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'integration'"
        ).scalar_one()
    assert "AUTOINCREMENT" not in created
    with engine.begin() as connection:
        for name in ("kept", "removed"):
            connection.execute(
                text(
                    "INSERT INTO integration (name, base_uri, preset, auth_kind, studies_template, "
                    "series_template, instances_template, metadata_template, frames_template, "
                    "allow_insecure_http, connect_timeout_s, read_timeout_s, "
                    "max_concurrent_requests, page_size, schedule_minutes, lookback_days, "
                    "enabled, created_at, updated_at) VALUES (:name, 'https://pacs.example/', "
                    "'orthanc', 'NONE', 's', 's/%{study_uid}/x', 'i', 'm', 'f', 0, 5, 60, 4, 100, "
                    "5, 3, 1, '2026-01-01', '2026-01-01')"
                ),
                {"name": name},
            )
        kept_id = connection.exec_driver_sql("SELECT id FROM integration WHERE name = 'kept'")
        connection.execute(
            text("INSERT INTO study (integration_id, study_uid, patient_id, first_seen_at) "
                 "VALUES (:i, '1.2.3', 'P1', '2026-01-01')"),
            {"i": kept_id.scalar_one()},
        )  # fmt: skip
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
