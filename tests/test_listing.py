"""`integrations list` through the database driver (core.listing): the same answer as the ORM,
without importing it, and the ORM path whenever the store is not one it can read as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import listing
from core.integrations import (
    add_integration,
    describe_integration,
    edit_integration,
    list_integrations,
)
from core.listing import integration_list
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from pacsbridge.cli import main

ROOT = Path(__file__).resolve().parents[1]


def add_varied_integrations() -> None:
    """One of each auth kind, a disabled one, one with warnings and non-default numbers."""
    add_integration(
        IntegrationSettings(
            name="north",
            base_uri="https://pacs.north.example/dicom-web/",
            auth_kind=AuthKind.BASIC,
            username="reader",
        ),
        "s3cret",
    )
    add_integration(
        IntegrationSettings(
            name="east",
            base_uri="https://pacs.east.example/dicom-web/",
            auth_kind=AuthKind.OAUTH2,
            username="client-id",
            token_url="https://id.east.example/token",
            scope="dicomweb.read",
        ),
        "client-secret",
    )
    add_integration(
        IntegrationSettings(
            name="Alpha-1",
            base_uri="http://pacs.alpha.example/",
            allow_insecure_http=True,
            read_timeout_s=12.5,
            follicle_thresholds_mm="11,15",
            trigger_diameter_mm=18.0,
            max_response_mb=128,
            enabled=False,
        ),
        None,
    )
    edit_integration("north", {"page_size": 50, "schedule_minutes": 15})


def test_the_driver_read_shows_exactly_what_the_orm_shows(store_backend):
    add_varied_integrations()

    through_driver = listing._rows_through_driver()
    shown = integration_list()

    assert through_driver is not None, "the store at HEAD should be read through the driver"
    assert shown == [describe_integration(record) for record in list_integrations()]
    assert [s["name"] for s in shown] == ["Alpha-1", "east", "north"]
    assert [s["secret"] for s in shown] == ["not set", "set", "set"]
    assert shown[0]["enabled"] is False
    assert shown[0]["auth_kind"] == "none"
    assert shown[0]["warnings"][0].startswith("INSECURE")
    assert "s3cret" not in json.dumps(shown)


def test_list_imports_none_of_the_store_libraries(store_backend, pacsbridge_home):
    add_varied_integrations()
    probe = (
        "import sys; from pacsbridge.cli import main; code = main(['integrations', 'list', "
        "'--json']); heavy = {'sqlalchemy', 'sqlmodel', 'pydantic'} & set(sys.modules); "
        "print(sorted(heavy), file=sys.stderr); sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PACSBRIDGE_HOME": str(pacsbridge_home)}

    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert [s["name"] for s in json.loads(result.stdout)] == ["Alpha-1", "east", "north"]
    assert result.stderr.strip() == "[]"


def test_a_store_not_made_yet_is_made_by_the_orm_path(store_backend, pacsbridge_home, capsys):
    assert listing._rows_through_driver() is None

    assert main(["integrations", "list"]) == 0

    assert "No integrations yet" in capsys.readouterr().out
    assert listing._rows_through_driver() == []


def test_a_store_at_another_revision_is_left_to_the_orm_path(store_backend, monkeypatch):
    add_varied_integrations()
    monkeypatch.setattr(listing, "HEAD", "9999")

    assert listing._rows_through_driver() is None
    assert [s["name"] for s in integration_list()] == ["Alpha-1", "east", "north"]


@pytest.mark.store_free
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader:pw-not-shown@127.0.0.1:1/pacsbridge",  # nothing listens
        "postgresql+psycopg2://reader:pw-not-shown@db.example/pacsbridge",  # not our driver
        "mysql://reader:pw-not-shown@db.example/pacsbridge",
    ],
)
def test_a_store_the_driver_cannot_read_gets_the_orm_paths_explanation(url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", url)

    code = main(["integrations", "list"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ")
    assert "hint: " in err
    assert "Traceback" not in err
    assert "pw-not-shown" not in err
