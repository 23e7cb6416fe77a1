"""Small pieces several pages share: choosing the integration, the empty state, errors, times."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core.checks.connection_test import ConnectionTestResult
from core.errors import PacsbridgeError
from core.store import utcnow

# The integration a page opens with, so a link from the Overview (or a bookmark) lands on it.
INTEGRATION_PARAM = "integration"
SETTINGS_PAGE = "views/settings.py"


def pick_integration(names: list[str], *, label: str = "Integration") -> str:
    """A selectbox over `names`, starting at ?integration=… and keeping it in the URL."""
    wanted = st.query_params.get(INTEGRATION_PARAM)
    index = names.index(wanted) if wanted in names else 0
    name: str = st.selectbox(label, names, index=index)
    st.query_params[INTEGRATION_PARAM] = name
    return name


def no_integration_yet() -> None:
    """What a page shows when no clinic is configured, and how to add one."""
    st.info(
        "No integration yet. Add one in Integration settings, or on the server with "
        "`pacsbridge integrations add NAME --base-uri URL`."
    )
    st.page_link(SETTINGS_PAGE, label="Open Integration settings", icon="⚙️")


def show_error(error: PacsbridgeError) -> None:
    """The cause in red, and what to do about it."""
    st.error(str(error))
    if error.hint:
        st.caption(error.hint)


def ago(moment: datetime | None) -> str:
    """'2025-01-02 09:30 UTC (12 min ago)', or 'never'."""
    if moment is None:
        return "never"
    minutes = int((utcnow() - moment).total_seconds() // 60)
    if minutes < 1:
        relative = "just now"
    elif minutes < 120:
        relative = f"{minutes} min ago"
    elif minutes < 48 * 60:
        relative = f"{minutes // 60} h ago"
    else:
        relative = f"{minutes // (24 * 60)} days ago"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({relative})"


def show_connection_test(result: ConnectionTestResult) -> None:
    """The green box with the patient's studies, or the red box with the cause and the fix."""
    for warning in result.warnings:
        st.warning(warning)
    if not result.ok:
        st.error(result.headline())
        return
    st.success(result.headline())
    if result.found:
        st.dataframe(
            [
                {
                    "date": s.study_date,
                    "description": s.description,
                    "modalities": ", ".join(s.modalities),
                    "series": s.series_count,
                    "instances": s.instance_count,
                    "study UID": s.study_uid,
                }
                for s in result.found
            ],
            hide_index=True,
        )
