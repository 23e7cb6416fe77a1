"""Overview: every clinic green, amber or red, with why and where to look next."""

from __future__ import annotations

import streamlit as st

from core.status import IntegrationStatus, Light, integration_statuses
from dashboard._widgets import INTEGRATION_PARAM, ago, no_integration_yet, plain
from dashboard.auth import current_user

DOTS = {Light.GREEN: "🟢", Light.AMBER: "🟠", Light.RED: "🔴"}


def card(status: IntegrationStatus) -> None:
    with st.container(border=True):
        head, numbers, links = st.columns([3, 2, 1.4])
        disabled = "" if status.enabled else " · disabled"
        syncing = " · syncing now" if status.syncing else ""
        head.markdown(f"### {DOTS[status.light]} {status.name}{disabled}{syncing}")
        head.caption(f"{status.light.value}: {plain(status.reason)}")
        numbers.markdown(
            f"**{status.studies:,}** studies · **{status.instances:,}** instances pulled  \n"
            f"Last successful sync: {ago(status.last_success_at)}"
        )
        params = {INTEGRATION_PARAM: status.name}
        links.page_link("views/activity.py", label="Sync activity", icon="🔄", query_params=params)
        links.page_link(
            "views/connection.py", label="Connection test", icon="🔌", query_params=params
        )
        if status.last_error:
            st.error(plain(status.last_error))
            if status.last_error_hint:
                st.caption(status.last_error_hint)
        for warning in status.warnings:
            st.warning(warning)


current_user()
st.title("Overview")
statuses = integration_statuses()
if not statuses:
    no_integration_yet()
    st.stop()

counts = {light: sum(s.light is light for s in statuses) for light in Light}
shown_light = st.segmented_control(
    "Show",
    ["all", *Light],
    default="all",
    format_func=lambda v: (
        f"all ({len(statuses)})" if v == "all" else f"{DOTS[v]} {v} ({counts[v]})"
    ),
    key="overview.filter",
)
shown = [s for s in statuses if shown_light in (None, "all") or s.light == shown_light]
if not shown:
    st.info(f"No {shown_light} integrations.")
for status in shown:
    card(status)
