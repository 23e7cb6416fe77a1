"""Connection test: does the clinic's PACS answer, and how many studies has it for a patient?

Both buttons ask the PACS directly (they are interactive checks, not pulls) with the stored
secret, which is decrypted here on the server and never shown.
"""

from __future__ import annotations

import streamlit as st

from core.checks.connection_test import run_connection_test
from core.checks.diagnose import Diagnosis, diagnose
from core.errors import PacsbridgeError
from core.integrations import get_integration, integration_secret, list_integrations, settings_of
from dashboard._widgets import (
    no_integration_yet,
    pick_integration,
    plain,
    show_connection_test,
    show_error,
)
from dashboard.auth import current_user


def show_diagnosis(result: Diagnosis) -> None:
    for warning in result.warnings:
        st.warning(warning)
    failed = next((step for step in result.steps if step.ok is False), None)
    if failed is None:
        st.success("All steps passed.")
    else:
        st.error(f"{failed.name} failed: {plain(failed.detail)}")
        if failed.hint:
            st.info(failed.hint)
    st.dataframe(
        [
            {
                "step": step.name,
                "result": {True: "✅ ok", False: "❌ failed", None: "– not run"}[step.ok],
                "detail": step.detail,
                "what to do": step.hint,
                "time (ms)": step.elapsed_ms,
            }
            for step in result.steps
        ],
        hide_index=True,
    )


current_user()
st.title("Connection test")
integrations = list_integrations()
if not integrations:
    no_integration_yet()
    st.stop()

name = pick_integration([i.name for i in integrations])
patient_id = st.text_input(
    "Patient ID", help="A patient the clinic has scanned: the test counts their studies."
).strip()
test_column, diagnose_column = st.columns(2)
test = test_column.button("Test connection", type="primary", disabled=not patient_id)
run_diagnosis = diagnose_column.button(
    "Diagnose", help="Check name, network, TLS, login, search, metadata and a frame, in order."
)
if not patient_id:
    st.caption("Enter a patient ID to test; Diagnose also works without one.")

record = get_integration(name)
try:
    if test:
        with st.spinner(f"Asking {name}'s PACS…"):
            show_connection_test(
                run_connection_test(settings_of(record), integration_secret(record), patient_id)
            )
    if run_diagnosis:
        with st.spinner(f"Diagnosing {name}…"):
            show_diagnosis(
                diagnose(
                    settings_of(record), integration_secret(record), patient_id=patient_id or None
                )
            )
except PacsbridgeError as exc:  # the stored secret cannot be decrypted (key file replaced)
    show_error(exc)
