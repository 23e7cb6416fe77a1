"""The audit trail: recorded by core.audit, append-only in the store, read by `pacsbridge audit`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from core import store
from core.audit import AuditAction, audit_trail, record
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from pacsbridge.cli import main

PASSWORD = "correct horse battery staple"


def test_the_trail_is_newest_first_and_filters_by_user_action_and_integration():
    record(AuditAction.SIGN_IN, "ada", client_address="10.0.0.1")
    record(AuditAction.VIEW_STUDY, "vic", integration="north", object_id="1.2.3")
    record(AuditAction.VIEW_PATIENT, "ada", integration="south", object_id="FC-1")

    assert [e.action for e in audit_trail()] == [
        AuditAction.VIEW_PATIENT,
        AuditAction.VIEW_STUDY,
        AuditAction.SIGN_IN,
    ]
    assert [e.object_id for e in audit_trail(username="ada")] == ["FC-1", None]
    assert [e.username for e in audit_trail(action=AuditAction.VIEW_STUDY)] == ["vic"]
    assert [e.object_id for e in audit_trail(integration="north")] == ["1.2.3"]
    assert len(audit_trail(limit=1)) == 1


@pytest.mark.parametrize(
    "statement", ["UPDATE auditevent SET username = 'mallory'", "DELETE FROM auditevent"]
)
def test_the_store_refuses_to_change_or_delete_the_trail(statement):
    record(AuditAction.SIGN_IN, "ada")

    with pytest.raises(DatabaseError, match="append-only"), store.session() as db:
        db.exec(text(statement))  # type: ignore[call-overload]

    assert [e.username for e in audit_trail()] == ["ada"]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_changes_are_recorded_and_shown_by_pacsbridge_audit(capsys, monkeypatch):
    monkeypatch.setenv("PACSBRIDGE_SECRET", PASSWORD)
    monkeypatch.setattr("getpass.getuser", lambda: "operator")
    add_integration(
        IntegrationSettings(name="north", base_uri="https://pacs.north.example/dicom-web/"), None
    )
    run(capsys, "users", "add", "ada", "--role", "admin")
    run(capsys, "request-sync", "north", "--study-uid", "1.2.3")

    code, out = run(capsys, "audit", "--json")

    assert code == 0
    events = json.loads(out)
    assert [(e["action"], e["username"], e["integration"], e["object_id"]) for e in events] == [
        ("queue-resync", "cli:operator", "north", "1.2.3"),
        ("add-user", "cli:operator", None, "ada"),
    ]
    assert set(events[0]) == {
        "at",
        "username",
        "action",
        "integration",
        "object_id",
        "client_address",
    }

    code, out = run(capsys, "audit", "--action", "add-user")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "(UTC)",
        "USER",
        "ACTION",
        "INTEGRATION",
        "OBJECT",
        "ADDRESS",
    ]
    assert len(lines) == 2
    assert "cli:operator  add-user" in lines[1]
    assert PASSWORD not in out


def test_cli_audit_without_events_says_so(capsys):
    assert run(capsys, "audit") == (0, "Nothing recorded matches.\n")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["integrations", "add", "east", "--base-uri", "https://pacs.east.example/dicom-web/"],
            ("add-integration", "east", None),
        ),
        (
            ["integrations", "edit", "north", "--schedule-minutes", "7"],
            ("change-integration", "north", None),
        ),
        (["integrations", "remove", "north", "--yes"], ("remove-integration", "north", None)),
        (
            [
                "mapping",
                "set",
                "north",
                "99ACME",
                "F1",
                "--kind",
                "follicle_diameter",
                "--unit",
                "mm",
            ],
            ("change-mappings", "north", "99ACME F1"),
        ),
        (["reextract", "north"], ("reextract", "north", None)),
    ],
)
def test_cli_changes_to_settings_and_mappings_are_recorded(capsys, argv, expected):
    add_integration(
        IntegrationSettings(name="north", base_uri="https://pacs.north.example/dicom-web/"), None
    )

    code, _ = run(capsys, *argv)

    assert code == 0
    [event] = audit_trail()
    assert (event.action.value, event.integration, event.object_id) == expected
    assert event.username.startswith("cli:")
