"""Audit trail (admins only): who signed in or failed to, viewed a patient or a study, changed
settings, mappings or users, or queued a resync — newest first, filtered by user, action or
integration. Rows hold identifiers only; nothing here can change or remove them.
"""

from __future__ import annotations

import streamlit as st

from core.audit import DEFAULT_LIMIT, AuditAction, audit_trail
from dashboard.auth import current_user, require_admin

user = current_user()
st.title("Audit trail")
require_admin(user, "read the audit trail")

user_col, action_col, integration_col = st.columns(3)
username = user_col.text_input("User").strip().lower() or None
action = action_col.selectbox("Action", list(AuditAction), index=None, placeholder="any")
integration = integration_col.text_input("Integration").strip() or None

events = audit_trail(username=username, action=action, integration=integration)
if not events:
    st.info("Nothing recorded matches.")
    st.stop()
st.caption(
    f"The newest {len(events)} events"
    + (
        f" (at most {DEFAULT_LIMIT}; narrow the filters for older ones)."
        if len(events) == DEFAULT_LIMIT
        else "."
    )
)
st.dataframe(
    [
        {
            "Time (UTC)": f"{event.at:%Y-%m-%d %H:%M:%S}",
            "User": event.username or "(unknown name)",
            "Action": event.action,
            "Integration": event.integration,
            "Object": event.object_id,
            "Client address": event.client_address,
        }
        for event in events
    ],
    hide_index=True,
)
