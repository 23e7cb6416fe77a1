"""The `pacsbridge` command against a real Orthanc, and secrets at rest."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from core import store
from core.errors import SecretStoreError
from core.integrations import get_integration, integration_secret
from pacsbridge.cli import main
from pacsbridge.demo import synthetic as factory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def added(orthanc, monkeypatch, capsys) -> str:
    """The session's Orthanc registered as integration "clinic" through the CLI."""
    monkeypatch.setenv("PACSBRIDGE_SECRET", orthanc.password)
    code, _, err = run(
        capsys, "integrations", "add", "clinic", "--base-uri", orthanc.dicomweb_url,
        "--auth", "basic", "--username", orthanc.username,
    )  # fmt: skip
    assert code == 0, err
    monkeypatch.delenv("PACSBRIDGE_SECRET")
    return "clinic"


def test_test_command_prints_the_contract_json(orthanc, added, patient_id, capsys):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
    )

    code, out, _ = run(capsys, "test", added, "--patient-id", patient_id, "--json")

    assert code == 0
    answer = json.loads(out)
    assert (answer["ok"], answer["studies"], answer["error"]) == (True, 1, None)


def test_test_command_for_people_shows_the_count_and_the_studies(
    orthanc, added, patient_id, capsys
):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
    )

    code, out, _ = run(capsys, "test", added, "--patient-id", patient_id)

    assert code == 0
    assert f"1 study found for patient {patient_id}" in out
    assert "20250105" in out
    assert "US Pelvis" in out


def test_failed_test_exits_1_with_the_error_and_no_traceback(
    orthanc, added, patient_id, monkeypatch, capsys
):
    monkeypatch.setenv("PACSBRIDGE_SECRET", "wrong-password")
    assert run(capsys, "integrations", "edit", added, "--set-secret")[0] == 0

    code, out, err = run(capsys, "--json", "test", added, "--patient-id", patient_id)

    assert code == 1
    answer = json.loads(out)
    assert answer["ok"] is False
    assert answer["studies"] is None
    assert "401" in answer["error"]
    assert "Traceback" not in err


def test_diagnose_command_lists_every_step(orthanc, added, capsys):
    code, out, _ = run(capsys, "diagnose", added, "--json")

    answer = json.loads(out)
    assert [s["name"] for s in answer["steps"]][:4] == [
        "DNS",
        "TCP connect",
        "TLS",
        "Authentication",
    ]
    assert {"name", "ok", "detail", "hint", "elapsed_ms"} <= set(answer["steps"][0])
    assert code == (0 if answer["ok"] else 1)


def test_unknown_integration_is_a_usage_error_with_a_hint(capsys):
    code, _out, err = run(capsys, "test", "nowhere", "--patient-id", "P1")

    assert code == 2
    assert "no integration named 'nowhere'" in err
    assert "pacsbridge integrations list" in err
    assert "Traceback" not in err


def test_invalid_settings_are_refused_naming_each_field(capsys):
    code, _, err = run(
        capsys, "integrations", "add", "x", "--base-uri", "http://pacs.clinic.example/",
        "--series-template", "studies/%{study}/series",
    )  # fmt: skip

    assert code == 2
    assert "base_uri: plain HTTP" in err
    assert "series_template: the all series template has an unknown placeholder %{study}" in err
    assert get_integration_names() == []


def test_missing_secret_without_a_terminal_is_refused(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    code, _, err = run(
        capsys, "integrations", "add", "x", "--base-uri", "https://pacs.example/dicom-web/",
        "--auth", "basic", "--username", "svc",
    )  # fmt: skip

    assert code == 2
    assert "PACSBRIDGE_SECRET" in err
    assert get_integration_names() == []


def test_remove_needs_confirmation_when_not_interactive(added, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)

    assert run(capsys, "integrations", "remove", added)[0] == 2
    assert get_integration_names() == [added]
    assert run(capsys, "integrations", "remove", added, "--yes")[0] == 0
    assert get_integration_names() == []


def get_integration_names() -> list[str]:
    from core.integrations import list_integrations

    return [i.name for i in list_integrations()]


# --- secrets --------------------------------------------------------------------------------


def test_secret_is_encrypted_at_rest_and_the_key_is_private(orthanc, added, pacsbridge_home):
    with store.engine().connect() as db:
        ciphertext = db.execute(text("SELECT secret_ciphertext FROM integration")).scalar_one()

    assert orthanc.password not in ciphertext
    for path in pacsbridge_home.iterdir():
        assert orthanc.password.encode() not in path.read_bytes(), path
    key = pacsbridge_home / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert integration_secret(get_integration(added)) == orthanc.password


def test_secret_never_appears_in_output_or_logs(orthanc, added, patient_id, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{orthanc.username}:{orthanc.password}".encode()).decode()
    printed = ""
    for argv in (
        ["integrations", "show", added],
        ["integrations", "show", added, "--json"],
        ["integrations", "list"],
        ["integrations", "list", "--json"],
        ["test", added, "--patient-id", patient_id],
        ["diagnose", added, "--patient-id", patient_id],
    ):
        _, out, err = run(capsys, *argv)
        printed += out + err

    assert "secret" in printed  # "secret: set" is shown, the value is not
    for leaked in (orthanc.password, basic):
        assert leaked not in printed
        assert leaked not in caplog.text
        assert leaked not in repr(get_integration(added))


def test_rotating_the_secret_replaces_it(orthanc, added, monkeypatch, capsys):
    before = get_integration(added).secret_ciphertext
    monkeypatch.setenv("PACSBRIDGE_SECRET", "rotated-secret")

    assert run(capsys, "integrations", "edit", added, "--set-secret")[0] == 0

    after = get_integration(added)
    assert after.secret_ciphertext != before
    assert integration_secret(after) == "rotated-secret"


def test_a_replaced_key_file_gives_an_actionable_error(added, pacsbridge_home):
    key = pacsbridge_home / "secret.key"
    key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))

    with pytest.raises(SecretStoreError) as caught:
        integration_secret(get_integration(added))
    assert "set the secret again" in caught.value.hint


def test_a_key_file_readable_by_others_is_refused(added, pacsbridge_home):
    (pacsbridge_home / "secret.key").chmod(0o644)

    with pytest.raises(SecretStoreError) as caught:
        integration_secret(get_integration(added))
    assert "chmod 600" in caught.value.hint


def test_console_script_reports_mistakes_without_a_traceback(pacsbridge_home: Path):
    script = Path(sys.executable).with_name("pacsbridge")
    completed = subprocess.run(
        [str(script), "integrations", "show", "missing"],
        capture_output=True,
        text=True,
        env={**os.environ, "PACSBRIDGE_HOME": str(pacsbridge_home)},
        check=False,
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith("error: no integration named 'missing'")
    assert "Traceback" not in completed.stderr


# --- a stored secret goes only where it was given for ---------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--base-uri", "https://elsewhere.example/dicom-web/"),  # another host
        ("--base-uri", "http://127.0.0.1:1/dicom-web/"),  # another port
        ("--auth", "bearer"),  # the password would go out as a token
    ],
)
def test_moving_the_secret_needs_set_secret(orthanc, added, option, value, capsys):
    before = get_integration(added)

    code, _, err = run(capsys, "integrations", "edit", added, option, value)

    assert code == 2
    assert "the stored password was given for another destination" in err
    assert "--set-secret" in err
    after = get_integration(added)
    assert (after.base_uri, after.auth_kind) == (before.base_uri, before.auth_kind)
    assert after.secret_ciphertext == before.secret_ciphertext


def test_moving_the_secret_with_set_secret_stores_the_new_one(added, monkeypatch, capsys):
    monkeypatch.setenv("PACSBRIDGE_SECRET", "secret-for-elsewhere")

    code, _, err = run(
        capsys, "integrations", "edit", added, "--base-uri", "https://elsewhere.example/dicom-web/",
        "--set-secret",
    )  # fmt: skip

    assert code == 0, err
    record = get_integration(added)
    assert record.base_uri == "https://elsewhere.example/dicom-web/"
    assert integration_secret(record) == "secret-for-elsewhere"


def test_another_path_on_the_same_server_keeps_the_secret(orthanc, added, capsys):
    moved = orthanc.dicomweb_url.replace("/dicom-web/", "/other-root/")

    code, _, err = run(capsys, "integrations", "edit", added, "--base-uri", moved)

    assert code == 0, err
    record = get_integration(added)
    assert record.base_uri == moved
    assert integration_secret(record) == orthanc.password


def test_another_token_endpoint_needs_the_client_secret_again(monkeypatch, capsys):
    monkeypatch.setenv("PACSBRIDGE_SECRET", "client-secret-1")
    assert run(
        capsys, "integrations", "add", "cloud", "--base-uri", "https://pacs.example/dicomweb/",
        "--auth", "oauth2", "--username", "reader",
        "--token-url", "https://idp.example/oauth2/token",
    )[0] == 0  # fmt: skip
    monkeypatch.delenv("PACSBRIDGE_SECRET")

    code, _, err = run(
        capsys, "integrations", "edit", "cloud", "--token-url", "https://idp.example:8443/token"
    )
    assert code == 2
    assert "token URL" in err
    assert "--set-secret" in err
    # The same identity provider at another path keeps it.
    code, _, err = run(
        capsys, "integrations", "edit", "cloud", "--token-url", "https://IDP.example:443/v2/token"
    )
    assert code == 0, err
    assert integration_secret(get_integration("cloud")) == "client-secret-1"


def test_switching_authentication_off_drops_the_stored_secret(added, capsys):
    code, _, err = run(capsys, "integrations", "edit", added, "--auth", "none")

    assert code == 0, err
    assert get_integration(added).secret_ciphertext is None


def test_the_answer_size_cap_is_set_per_integration_within_bounds(added, capsys):
    assert run(capsys, "integrations", "edit", added, "--max-response-mb", "256")[0] == 0
    assert get_integration(added).max_response_mb == 256

    code, _, err = run(capsys, "integrations", "edit", added, "--max-response-mb", "0")

    assert code == 2  # a usage error
    assert "max_response_mb: 0 is outside 1–4096 MB" in err
    assert get_integration(added).max_response_mb == 256
