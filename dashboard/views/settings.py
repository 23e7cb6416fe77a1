"""Integration settings: add, edit, disable and remove clinics' PACS connections.

Every field is checked as it is typed by the same validator the CLI uses, and each problem is
shown under its field. The secret is write-only: its field starts empty and is emptied again
after saving; leaving it empty keeps the stored secret. Viewers see the settings, not the form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import streamlit as st

from core.audit import AuditAction
from core.checks.connection_test import run_connection_test
from core.errors import ConfigProblem, InvalidIntegration, PacsbridgeError, SecretNeedsReentry
from core.integrations import (
    add_integration,
    describe_integration,
    edit_integration,
    get_integration,
    integration_secret,
    list_integrations,
    remove_integration,
    secret_destination_changes,
    settings_of,
    stored_secret_reusable,
)
from core.settings.auth import SECRET_LABELS, AuthKind
from core.settings.model import IntegrationSettings
from core.settings.presets import PRESETS
from core.settings.templates import TEMPLATE_LABELS, TemplateKind
from core.settings.validation import normalise_base_uri, settings_warnings, validate_settings
from core.store import Integration, User
from dashboard._widgets import INTEGRATION_PARAM, show_connection_test, show_error
from dashboard.auth import admin_action, audit, current_user, require_admin

NEW = "➕ New integration"
TARGET_KEY = "settings.target"
FLASH_KEY = "settings.flash"
OPTIONAL_TEXT = ("username", "token_url", "scope", "ca_bundle")
# Placeholders filled with sample UIDs, to show the URL each template makes.
SAMPLE = ("1.2.840.113619.2.55.3.1", "1.2.840.113619.2.55.3.1.1", "1.2.840.113619.2.55.3.1.1.1")


def key(prefix: str, field: str) -> str:
    return f"{prefix}.{field}"


def load_form(prefix: str, record: Integration | None) -> None:
    """Put the integration's settings (or the defaults) into the form, once."""
    initial = settings_of(record) if record else IntegrationSettings(name="", base_uri="")
    for field, value in initial.model_dump(mode="json", exclude={"enabled"}).items():
        if key(prefix, field) not in st.session_state:
            st.session_state[key(prefix, field)] = "" if value is None else value


def draft_of(prefix: str, record: Integration | None) -> IntegrationSettings:
    values: dict[str, Any] = {
        field: st.session_state[key(prefix, field)]
        for field in IntegrationSettings.model_fields
        if field != "enabled"
    }
    for field in OPTIONAL_TEXT:
        values[field] = values[field].strip() or None
    values["enabled"] = record.enabled if record else True
    return IntegrationSettings.model_validate(values)


def problems_of(
    draft: IntegrationSettings, record: Integration | None, typed_secret: str
) -> dict[str, list[ConfigProblem]]:
    """The validator's problems by field, and a missing secret (which the store checks): none
    stored, or a stored one the draft would send to another destination."""
    try:
        validate_settings(draft)
        found = []
    except InvalidIntegration as exc:
        found = exc.problems
    if draft.needs_secret() and not typed_secret:
        what = SECRET_LABELS[draft.auth_kind]
        if not (record and record.secret_ciphertext):
            found.append(ConfigProblem("secret", f"no {what} is stored", f"Set the {what}."))
        elif changes := secret_destination_changes(settings_of(record), draft):
            stored_what = SECRET_LABELS[AuthKind(record.auth_kind)]
            found.extend(SecretNeedsReentry(stored_what, what, changes).problems)
    grouped: dict[str, list[ConfigProblem]] = {}
    for problem in found:
        grouped.setdefault(problem.field, []).append(problem)
    return grouped


def fill_from_preset(prefix: str) -> None:
    preset = PRESETS[st.session_state[key(prefix, "preset")]]
    for kind, template in preset.templates.items():
        st.session_state[key(prefix, kind.value)] = template
    st.session_state[key(prefix, "page_size")] = preset.default_page_size


def example_url(draft: IntegrationSettings, kind: TemplateKind) -> str:
    templates = draft.templates()
    study, series, instance = SAMPLE
    path = {
        TemplateKind.STUDIES: templates.studies_path,
        TemplateKind.SERIES: lambda: templates.series_path(study),
        TemplateKind.INSTANCES: lambda: templates.instances_path(study, series),
        TemplateKind.METADATA: lambda: templates.metadata_path(study, series, instance),
        TemplateKind.FRAMES: lambda: templates.frames_path(study, series, instance, [1]),
    }[kind]()
    return urljoin(normalise_base_uri(draft.base_uri), path)


@admin_action
def save(user: User, prefix: str, record_name: str | None) -> None:
    # A callback: it runs before the page is drawn again, so the secret field can be emptied.
    record = get_integration(record_name) if record_name else None
    draft = draft_of(prefix, record)
    secret = st.session_state.get(key(prefix, "secret")) or None
    try:
        if record_name:
            saved = edit_integration(record_name, draft.model_dump(exclude={"enabled"}), secret)
        else:
            saved = add_integration(draft, secret)
    except PacsbridgeError as exc:
        st.session_state[FLASH_KEY] = exc
        return
    action = AuditAction.CHANGE_INTEGRATION if record_name else AuditAction.ADD_INTEGRATION
    audit(user, action, integration=saved.name)
    st.session_state[key(prefix, "secret")] = ""
    st.session_state[TARGET_KEY] = saved.name
    st.session_state[FLASH_KEY] = f"Saved {saved.name}."


@admin_action
def set_enabled(user: User, name: str, enabled: bool) -> None:
    edit_integration(name, {"enabled": enabled})
    audit(user, AuditAction.CHANGE_INTEGRATION, integration=name)
    st.session_state[FLASH_KEY] = f"{name} {'enabled' if enabled else 'disabled'}."


@admin_action
def remove(user: User, name: str) -> None:
    remove_integration(name)
    audit(user, AuditAction.REMOVE_INTEGRATION, integration=name)
    st.session_state[TARGET_KEY] = NEW
    st.session_state[FLASH_KEY] = f"Removed {name}."


def summary(record: Integration) -> dict[str, Any]:
    """What everyone may see of an integration: no secret, only whether one is set."""
    shown = describe_integration(record)
    columns = ("name", "enabled", "preset", "base_uri", "auth_kind", "username", "secret")
    return {c: shown[c] for c in columns} | {"warnings": "; ".join(shown["warnings"])}


def show_flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if isinstance(flash, PacsbridgeError):
        show_error(flash)
    elif flash:
        st.success(flash)


user = current_user()
st.title("Integration settings")
integrations = list_integrations()
if integrations:
    st.dataframe([summary(i) for i in integrations], hide_index=True)
else:
    st.info(
        "No integration yet. An admin adds one here, or on the server with "
        "`pacsbridge integrations add NAME --base-uri URL`."
    )
require_admin(user, "add, change or remove integrations")

show_flash()
names = [i.name for i in integrations]
if TARGET_KEY not in st.session_state or st.session_state[TARGET_KEY] not in [NEW, *names]:
    wanted = st.query_params.get(INTEGRATION_PARAM)
    st.session_state[TARGET_KEY] = wanted if wanted in names else (names[0] if names else NEW)
target = st.selectbox("Integration to edit", [NEW, *names], key=TARGET_KEY)
if target == NEW:
    st.query_params.pop(INTEGRATION_PARAM, None)
else:
    st.query_params[INTEGRATION_PARAM] = target
record = None if target == NEW else get_integration(target)
prefix = f"settings.{target}"
load_form(prefix, record)
draft = draft_of(prefix, record)
problems = problems_of(draft, record, st.session_state.get(key(prefix, "secret"), ""))


def field(widget: Any, name: str, label: str, **options: Any) -> None:
    """One input, then the validator's problems with it."""
    value = widget(label, key=key(prefix, name), **options)
    for problem in problems.get(name, []):
        if value == "":  # not filled in yet: a reminder, not an error
            st.caption(f"Required. {problem.hint}")
        else:
            st.error(f"{problem.message}. {problem.hint}")


st.subheader("Connection")
field(st.text_input, "name", "Name", help="Letters, digits, '-', '_' or '.'; e.g. clinic-north")
preset = PRESETS.get(draft.preset)
field(
    st.selectbox,
    "preset",
    "Server preset (fills the path templates)",
    options=list(PRESETS),
    format_func=lambda p: PRESETS[p].label,
    on_change=fill_from_preset,
    args=(prefix,),
)
field(
    st.text_input,
    "base_uri",
    "Base URI (the DICOMweb root)",
    placeholder=preset.example_base_uri if preset else "",
)
for warning in settings_warnings(draft):
    st.warning(warning)
field(
    st.checkbox,
    "allow_insecure_http",
    "Allow plain HTTP to a non-local host (insecure: testing only, shown as a warning everywhere)",
)
field(st.text_input, "ca_bundle", "CA bundle (PEM file on the server, if not a public CA)")

st.subheader("Authentication")
field(st.selectbox, "auth_kind", "Authentication", options=[k.value for k in AuthKind])
if draft.auth_kind in (AuthKind.BASIC, AuthKind.OAUTH2):
    label = "User name" if draft.auth_kind is AuthKind.BASIC else "Client ID"
    field(st.text_input, "username", label)
if draft.auth_kind is AuthKind.OAUTH2:
    field(
        st.text_input,
        "token_url",
        "Token URL",
        placeholder=preset.identity_provider_example if preset else "",
    )
    field(st.text_input, "scope", "Scope", placeholder=preset.scope_example if preset else "")
if draft.needs_secret():
    what = SECRET_LABELS[draft.auth_kind]
    field(
        st.text_input,
        "secret",
        f"Set new {what}",
        type="password",
        autocomplete="new-password",
        help="Write-only: the stored one is never shown. Leave empty to keep it.",
    )
    if record and stored_secret_reusable(record, draft):
        st.caption(f"A {what} is stored; leave the field empty to keep it.")

st.subheader("Path templates")
st.button("Fill from the preset again", on_click=fill_from_preset, args=(prefix,))
for kind in TemplateKind:
    field(st.text_input, kind.value, f"{TEMPLATE_LABELS[kind].capitalize()} template")
    if not problems.get(kind.value) and not problems.get("base_uri"):
        st.caption(f"e.g. `{example_url(draft, kind)}`")

st.subheader("Limits and schedule")
left, middle, right = st.columns(3)
with left:
    field(st.number_input, "connect_timeout_s", "Connect timeout (s)", step=1.0)
    field(st.number_input, "read_timeout_s", "Read timeout (s)", step=5.0)
    field(st.number_input, "max_response_mb", "Largest search or metadata answer (MB)", step=16)
with middle:
    field(st.number_input, "max_concurrent_requests", "Max concurrent requests", step=1)
    field(st.number_input, "page_size", "Search page size", step=10)
with right:
    field(st.number_input, "schedule_minutes", "Sync every (minutes)", step=1)
    field(st.number_input, "lookback_days", "Look back (days)", step=1)

st.subheader("Stimulation monitoring")
st.caption(
    "How Patient measurements reads this clinic's cycles. The trigger criterion is shown as "
    "information for the clinician."
)
gap, thresholds, count, size = st.columns(4)
with gap:
    field(st.number_input, "cycle_gap_days", "New cycle after (days without a scan)", step=1)
with thresholds:
    field(st.text_input, "follicle_thresholds_mm", "Follicle sizes counted (mm)")
with count:
    field(st.number_input, "trigger_follicle_count", "Trigger criterion: follicles", step=1)
with size:
    field(st.number_input, "trigger_diameter_mm", "… at least (mm)", step=0.5)

st.subheader("Test and save")
patient_id = st.text_input("Patient ID for the test", key=key(prefix, "test_patient")).strip()
test_column, save_column = st.columns(2)
if test_column.button("Test before save", disabled=bool(problems) or not patient_id):
    # The stored secret only goes where it was given for, even if the button was not disabled.
    secret = st.session_state.get(key(prefix, "secret")) or (
        integration_secret(record) if record and stored_secret_reusable(record, draft) else None
    )
    with st.spinner("Asking the PACS…"):
        show_connection_test(run_connection_test(validate_settings(draft), secret, patient_id))
save_column.button(
    "Save",
    type="primary",
    disabled=bool(problems),
    on_click=save,
    args=(prefix, record.name if record else None),
)
if problems:
    st.caption("Fix the problems shown above to save.")

if record is not None:
    st.subheader("Disable or remove")
    st.button(
        "Enable" if not record.enabled else "Disable (stop scheduled syncs)",
        on_click=set_enabled,
        args=(record.name, not record.enabled),
    )
    with st.expander(f"Remove {record.name}"):
        st.write(
            "Removes its settings, everything pulled for it from the store, and its pulled images."
        )
        confirm = st.text_input(f"Type {record.name} to confirm", key=key(prefix, "confirm"))
        st.button("Remove", disabled=confirm != record.name, on_click=remove, args=(record.name,))
