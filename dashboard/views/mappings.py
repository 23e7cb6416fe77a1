"""Code mappings: turn a vendor's private SR codes into known measurement kinds, per clinic.

Saving makes the store match the table (rows added or changed are set, rows deleted are
removed); a row the core refuses stays in the table with its error, to be fixed and saved
again. Stored reports keep their old rows until "Re-extract measurements".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.audit import AuditAction
from core.errors import PacsbridgeError
from core.integrations import list_integrations
from core.measurements import KNOWN_KINDS, list_mappings, reextract, remove_mapping, set_mapping
from dashboard._widgets import no_integration_yet, pick_integration, show_error
from dashboard.auth import audit, current_user, require_admin

COLUMNS = ["scheme", "code", "kind", "unit", "note"]


def stored_rows(name: str) -> list[dict[str, Any]]:
    return [{c: getattr(m, c) for c in COLUMNS} for m in list_mappings(name)]


def clean(row: dict[str, Any]) -> dict[str, str]:
    # The editor gives None or NaN for cells left empty.
    return {c: "" if pd.isna(row.get(c)) else str(row[c]).strip() for c in COLUMNS}


def save(name: str, table: pd.DataFrame) -> list[tuple[dict[str, str], PacsbridgeError]]:
    """Make the stored mappings equal the edited table; return the rows refused, with why."""
    stored = {(r["scheme"], r["code"]): clean(r) for r in stored_rows(name)}
    wanted = [clean(r) for r in table.to_dict("records")]
    wanted = [r for r in wanted if any(r.values())]  # a blank added row is not a mapping
    refused = []
    for row in wanted:
        if stored.get((row["scheme"], row["code"])) == row:
            continue
        try:
            set_mapping(
                name, row["scheme"], row["code"], row["kind"], row["unit"], row["note"] or None
            )
        except PacsbridgeError as exc:
            refused.append((row, exc))
    kept = {(r["scheme"], r["code"]) for r in wanted}
    for scheme, code in stored.keys() - kept:
        remove_mapping(name, scheme, code)
    return refused


user = current_user()
st.title("Code mappings")
integrations = list_integrations()
if not integrations:
    no_integration_yet()
    st.stop()
name = pick_integration([i.name for i in integrations])
st.caption(
    "A mapping turns a device's private SR code (scheme + code) into a measurement kind, "
    "with the unit the device sends. Standard DICOM codes need no mapping."
)
rows = stored_rows(name)
if not user.is_admin:
    if rows:
        st.dataframe(pd.DataFrame(rows, columns=COLUMNS), hide_index=True)
    else:
        st.info(f"No code mappings for {name}.")
    require_admin(user, "edit code mappings or re-extract measurements")

state = f"mappings.{name}"
refused_key, version_key, saved_key = f"{state}.refused", f"{state}.version", f"{state}.saved"
refused: list[tuple[dict[str, str], PacsbridgeError]] = st.session_state.get(refused_key, [])
if not rows and not refused:
    st.info(f"No code mappings for {name} yet. Add a row below, then save.")
table = st.data_editor(
    pd.DataFrame(rows + [row for row, _ in refused], columns=COLUMNS),
    num_rows="dynamic",
    hide_index=True,
    column_config={
        "scheme": st.column_config.TextColumn("coding scheme", required=True),
        "code": st.column_config.TextColumn("code value", required=True),
        "kind": st.column_config.SelectboxColumn(options=sorted(KNOWN_KINDS), required=True),
        "unit": st.column_config.TextColumn("unit (UCUM, as sent)", required=True),
        "note": st.column_config.TextColumn("note"),
    },
    # A new key after each save starts the editor from the store again.
    key=f"{state}.editor.{st.session_state.get(version_key, 0)}",
)
if st.session_state.pop(saved_key, False) and not refused:
    st.success("Mappings saved. Re-extract to apply them to the reports already pulled.")
for row, error in refused:
    st.error(f"Not saved: {row['scheme']} {row['code']} — {error}")
    if error.hint:
        st.caption(error.hint)

if st.button("Save mappings", type="primary"):
    st.session_state[refused_key] = save(name, table)
    audit(user, AuditAction.CHANGE_MAPPINGS, integration=name)
    st.session_state[version_key] = st.session_state.get(version_key, 0) + 1
    st.session_state[saved_key] = True
    st.rerun()

st.divider()
st.caption("After changing mappings, derive the stored reports' measurements again.")
if st.button("Re-extract measurements"):
    with st.spinner(f"Re-extracting {name}'s SR measurements from stored reports…"):
        try:
            outcome = reextract(name)
            audit(user, AuditAction.REEXTRACT, integration=name)
        except PacsbridgeError as exc:
            show_error(exc)
        else:
            st.success(
                f"Re-extracted {outcome.rows} measurements from {outcome.instances} SR instances."
            )
