"""`pacsbridge integrations import` and `export`: JSON Lines, all or nothing, secrets only in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.integrations import add_integration, get_integration, integration_secret
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from pacsbridge.cli import main

BASE = "https://pacs{n}.clinic.example/dicom-web/"


def line(name: str, **fields: object) -> str:
    return json.dumps({"name": name, "base_uri": BASE.format(n=name), **fields})


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "fleet.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_import_adds_and_updates_and_keeps_secrets_encrypted(tmp_path, capsys):
    add_integration(
        IntegrationSettings(
            name="north", base_uri=BASE.format(n="north"), auth_kind=AuthKind.BASIC, username="r"
        ),
        "old-secret",
    )
    file = write(
        tmp_path,
        line("north", schedule_minutes=15),  # updated; its secret stays
        line("south", auth_kind="basic", username="reader", secret="south-secret"),
        "",
        line("east", preset="dcm4chee", auth_kind="none"),
    )

    code, out, _ = run(capsys, "integrations", "import", file, "--json")

    assert code == 0
    assert json.loads(out) == {"ok": True, "added": ["south", "east"], "updated": ["north"]}
    north = get_integration("north")
    assert (north.schedule_minutes, integration_secret(north)) == (15, "old-secret")
    assert integration_secret(get_integration("south")) == "south-secret"
    assert get_integration("east").preset == "dcm4chee"


def test_a_bad_line_imports_nothing_and_every_problem_is_named(tmp_path, capsys):
    file = write(
        tmp_path,
        line("good"),
        line("bad-template", series_template="studies/../series"),
        '{"name": "garbage", "base_uri": ',
        line("unknown-field", colour="red"),
        line("no-secret", auth_kind="basic", username="reader"),
        line("good"),
        line("not-a-number", page_size="many"),
        line("uid-like", studies_template="1.2.840.10008?x=%{study_uid}"),
    )

    code, _, err = run(capsys, "integrations", "import", file)

    assert code == 2
    for expected in (
        "line 2: series_template:",
        "line 3: (line): not JSON",
        "line 4: colour: unknown field",
        "line 5: secret: basic authentication needs a password",
        "line 6: name: 'good' is also on line 1",
        "line 7: page_size:",
        "line 8: studies_template:",
    ):
        assert expected in err
    assert "nothing imported" in err
    assert "Traceback" not in err
    code, out, _ = run(capsys, "integrations", "list", "--json")
    assert json.loads(out) == []


def test_what_show_prints_for_the_secret_is_never_stored_as_one(tmp_path, capsys):
    file = write(tmp_path, line("north", auth_kind="bearer", secret="set"))

    code, _, err = run(capsys, "integrations", "import", file)

    assert code == 2
    assert "line 1: secret: give the secret itself" in err


def test_export_writes_settings_without_secrets_and_reimports_unchanged(tmp_path, capsys):
    add_integration(
        IntegrationSettings(
            name="north", base_uri=BASE.format(n="north"), auth_kind=AuthKind.BASIC, username="r"
        ),
        "north-secret",
    )
    add_integration(IntegrationSettings(name="south", base_uri=BASE.format(n="south")), None)
    exported = tmp_path / "fleet.jsonl"

    assert run(capsys, "integrations", "export", str(exported))[0] == 0

    text = exported.read_text()
    assert "north-secret" not in text
    rows = [json.loads(x) for x in text.splitlines()]
    assert [r["name"] for r in rows] == ["north", "south"]
    assert "secret" not in rows[0]
    code, out, _ = run(capsys, "integrations", "import", str(exported), "--json")
    assert (code, json.loads(out)["updated"]) == (0, ["north", "south"])
    assert integration_secret(get_integration("north")) == "north-secret"


def test_the_output_of_show_imports_back(capsys, tmp_path):
    add_integration(IntegrationSettings(name="north", base_uri=BASE.format(n="north")), None)
    _, shown, _ = run(capsys, "integrations", "show", "north", "--json")
    changed = {**json.loads(shown), "schedule_minutes": 30}
    del changed["secret"]

    file = write(tmp_path, json.dumps(changed))

    assert run(capsys, "integrations", "import", file)[0] == 0
    assert get_integration("north").schedule_minutes == 30


@pytest.mark.parametrize("missing", ["no-such-file.jsonl"])
def test_an_unreadable_file_is_a_clear_error(capsys, missing):
    code, _, err = run(capsys, "integrations", "import", missing)

    assert code == 2
    assert f"cannot read {missing}" in err
