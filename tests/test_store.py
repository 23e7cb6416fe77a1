"""The store on SQLite and PostgreSQL: `$DATABASE_URL`, migrations of every earlier schema in
place, and several processes opening a new store at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, select

from core import files, store
from core.integrations import add_integration, get_integration, integration_secret
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from core.store import Instance, StoreConfigError, StoreNewerThanCode, database_url
from core.store._schema import MIGRATIONS, current_revision
from core.store_constants import HEAD
from pacsbridge.cli import main

SECRET = "s3cret-for-the-pacs"
# The old add-only steps, by count, and what each added: the revisions 0001…0007.
LEGACY_STEPS = range(0, 8)


def test_head_names_the_newest_revision():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_a_new_store_matches_the_tables_exactly(store_backend):
    engine = store.engine()
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert current_revision(connection) == HEAD
    assert differences == []


def _upgrade_to(revision: str) -> None:
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = store._database.create_store_engine(database_url())  # no migration on open
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def _as_legacy_store(steps: int) -> None:
    """What the add-only steps left behind after `steps` of them: the same tables, counted in
    a schema_version table instead of Alembic's."""
    if steps:
        _upgrade_to(f"{steps:04d}")
    engine = store._database.create_store_engine(database_url())
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        connection.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": steps})
        if steps:
            # An integration as that version stored it (without the columns added later).
            columns = {c["name"] for c in inspect(connection).get_columns("integration")}
            row = {
                "name": "clinic", "base_uri": "https://pacs.clinic.example/dicom-web/",
                "preset": "orthanc", "auth_kind": "BASIC", "username": "svc",
                "studies_template": "studies", "series_template": "studies/%{study_uid}/series",
                "instances_template": "studies/%{study_uid}/series/%{series_uid}/instances",
                "metadata_template": "studies/%{study_uid}/series/%{series_uid}/instances/"
                "%{instance_uid}/metadata",
                "frames_template": "studies/%{study_uid}/series/%{series_uid}/instances/"
                "%{instance_uid}/frames/%{frame_number}",
                "allow_insecure_http": False, "connect_timeout_s": 5.0, "read_timeout_s": 60.0,
                "max_concurrent_requests": 4, "page_size": 100, "schedule_minutes": 5,
                "enabled": True, "secret_ciphertext": store_secret(),
                "created_at": store.utcnow(), "updated_at": store.utcnow(),
            }  # fmt: skip
            assert "lookback_days" not in columns or steps >= 4
            names = ", ".join(f'"{k}"' for k in row)
            values = ", ".join(f":{k}" for k in row)
            insert = f"INSERT INTO integration ({names}) VALUES ({values})"  # noqa: S608 - names from the literal above
            connection.execute(text(insert), row)
    engine.dispose()


def store_secret() -> str:
    from core.secrets import SecretBox

    return SecretBox().encrypt(SECRET)


@pytest.mark.parametrize("steps", LEGACY_STEPS)
def test_a_store_of_every_earlier_version_is_upgraded_in_place(store_backend, steps):
    _as_legacy_store(steps)

    engine = store.engine()

    with engine.connect() as connection:
        assert current_revision(connection) == HEAD
        assert not inspect(connection).has_table("schema_version")
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    if steps:
        integration = get_integration("clinic")
        assert (integration.lookback_days, integration_secret(integration)) == (3, SECRET)


def test_several_processes_opening_a_new_store_at_once_all_succeed(store_backend):
    opener = "from core import store\nstore.engine()\nprint('opened')\n"
    processes = [
        subprocess.Popen([sys.executable, "-c", opener], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    assert outputs == ["opened\n"] * 4
    add_integration(
        IntegrationSettings(name="clinic", base_uri="https://pacs.clinic.example/dicom-web/"),
        None,
    )
    assert get_integration("clinic").auth_kind is AuthKind.NONE


def test_a_store_upgraded_by_a_newer_pacsbridge_is_refused_and_left_as_it_is(store_backend, capsys):
    add_integration(
        IntegrationSettings(name="clinic", base_uri="https://pacs.clinic.example/dicom-web/"),
        None,
    )
    with store.engine().begin() as connection:  # as a later version's upgrade leaves it
        connection.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    store.dispose()

    with pytest.raises(StoreNewerThanCode) as refused:
        store.open_store()

    assert "revision 9001" in str(refused.value)
    assert f"its newest is {HEAD}" in str(refused.value)
    assert "version that the other hosts run" in refused.value.hint
    code = main(["integrations", "list"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: the store's schema is at revision 9001")
    assert "Traceback" not in err
    engine = store._database.create_store_engine(database_url())
    with engine.connect() as connection:
        assert current_revision(connection) == "9001"
        names = connection.execute(text("SELECT name FROM integration")).scalars().all()
    engine.dispose()
    assert names == ["clinic"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u:p@db/pacsbridge", "does not support"),
        ("postgresql+asyncpg://u:p@db/pacsbridge", "uses psycopg"),
        ("postgresql://u:p@db.example:5432", "names no database"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_refused_with_the_fix(
    monkeypatch, capsys, url, words
):
    monkeypatch.setenv("DATABASE_URL", url)

    with pytest.raises(StoreConfigError) as refused:
        database_url()

    assert words in str(refused.value)
    assert refused.value.hint
    code = main(["integrations", "list"])
    _, err = capsys.readouterr()
    assert code == 1
    assert words in err
    assert "Traceback" not in err
    assert ":p@" not in err


def test_a_missing_driver_is_named_with_the_package_to_install(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example/pacsbridge")
    monkeypatch.setattr(store._database.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(StoreConfigError, match="driver 'psycopg' is not installed") as refused:
        database_url()

    assert "pip install 'psycopg[binary]'" in refused.value.hint


def test_the_plain_postgresql_url_gets_the_psycopg_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example:5432/pacsbridge")

    assert database_url().drivername == "postgresql+psycopg"


def test_pulled_paths_become_relative_to_the_data_root(store_backend, pacsbridge_home):
    _upgrade_to("0012")
    engine = store._database.create_store_engine(database_url())
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO integration (name, base_uri, preset, auth_kind, studies_template, "
                "series_template, instances_template, metadata_template, frames_template, "
                "allow_insecure_http, connect_timeout_s, read_timeout_s, max_concurrent_requests, "
                "page_size, schedule_minutes, enabled, created_at, updated_at) VALUES ('c', "
                "'https://pacs.example/', 'orthanc', 'NONE', 's', 's', 'i', 'm', 'f', false, 5, "
                "60, 4, 100, 5, true, :now, :now)"
            ),
            {"now": store.utcnow()},
        )
        connection.execute(
            text(
                "INSERT INTO study (integration_id, study_uid, first_seen_at) "
                "VALUES (1, '1.2', :now)"
            ),
            {"now": store.utcnow()},
        )
        connection.execute(
            text("INSERT INTO series (integration_id, study_id, study_uid, series_uid) "
                 "VALUES (1, 1, '1.2', '1.2.3')")
        )  # fmt: skip
        connection.execute(
            text(
                "INSERT INTO instance (integration_id, series_id, study_uid, series_uid, "
                "sop_instance_uid, frames_bytes, metadata_bytes, files_path, thumbnail_path, "
                "pulled_at) VALUES (1, 1, '1.2', '1.2.3', '1.2.3.4', 0, 0, "
                "'files/1/1.2/1.2.3/1.2.3.4', 'files/1/1.2/1.2.3/1.2.3.4/thumbnail.jpg', :now)"
            ),
            {"now": store.utcnow()},
        )
    engine.dispose()

    with store.session() as db:
        (instance,) = db.exec(select(Instance)).all()

    assert instance.files_path == "1/1.2/1.2.3/1.2.3.4"
    assert files.absolute(instance.thumbnail_path) == (
        pacsbridge_home / "files/1/1.2/1.2.3/1.2.3.4/thumbnail.jpg"
    )
