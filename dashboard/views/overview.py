"""Overview: every clinic's state in one compact table, red and amber first, searchable and paged
for a fleet of hundreds, with the chosen clinic's error, hint and links below."""

from __future__ import annotations

import math

import streamlit as st

from core.status import IntegrationStatus, Light, integration_statuses
from dashboard._widgets import INTEGRATION_PARAM, ago, no_integration_yet, plain
from dashboard.auth import current_user

DOTS = {Light.GREEN: "🟢", Light.AMBER: "🟠", Light.RED: "🔴"}
URGENCY = {Light.RED: 0, Light.AMBER: 1, Light.GREEN: 2}
PAGE_ROWS = 50


def row(status: IntegrationStatus) -> dict[str, object]:
    return {
        "state": f"{DOTS[status.light]} {status.light.value}",
        "integration": status.name + ("" if status.enabled else " (disabled)"),
        "reason": status.reason,
        "last success": ago(status.last_success_at),
        "late": _late(status),
        "running on": status.running_on or "",
        "studies": status.studies,
        "instances": status.instances,
    }


def _late(status: IntegrationStatus) -> str:
    if status.late_by is None:
        return ""
    minutes = int(status.late_by.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def details(status: IntegrationStatus) -> None:
    """The chosen clinic: why it has its colour, what failed last, and where to look next."""
    with st.container(border=True):
        head, links = st.columns([4, 1.4])
        head.markdown(
            f"**{plain(status.name)}**: {DOTS[status.light]} {status.light.value}, "
            f"{plain(status.reason)}"
        )
        head.text(
            f"{status.studies:,} studies, {status.instances:,} instances pulled; "
            f"last successful sync {ago(status.last_success_at)}"
        )
        params = {INTEGRATION_PARAM: status.name}
        links.page_link("views/activity.py", label="Sync activity", icon="🔄", query_params=params)
        links.page_link(
            "views/connection.py", label="Connection test", icon="🔌", query_params=params
        )
        if status.last_error:
            st.error(plain(status.last_error))
            if status.last_error_hint:
                st.caption(plain(status.last_error_hint))
        for warning in status.warnings:
            st.warning(plain(warning))


current_user()
st.title("Overview")
statuses = integration_statuses()
if not statuses:
    no_integration_yet()
    st.stop()

counts = {light: sum(s.light is light for s in statuses) for light in Light}
search_column, filter_column = st.columns([2, 3])
search = search_column.text_input(
    "Search", key="overview.search", placeholder="part of an integration's name"
)
shown_light = filter_column.segmented_control(
    "Show",
    ["all", *Light],
    default="all",
    format_func=lambda v: (
        f"all ({len(statuses)})" if v == "all" else f"{DOTS[v]} {v} ({counts[v]})"
    ),
    key="overview.filter",
)
needle = search.strip().lower()
shown = sorted(
    (
        s
        for s in statuses
        if (shown_light in (None, "all") or s.light == shown_light) and needle in s.name.lower()
    ),
    key=lambda s: (URGENCY[s.light], s.name),
)
if not shown:
    st.info("No integration matches." if needle else f"No {shown_light} integrations.")
    st.stop()

pages = math.ceil(len(shown) / PAGE_ROWS)
page = 1
if pages > 1:
    page = int(st.number_input("Page", 1, pages, 1, key="overview.page"))
first = (page - 1) * PAGE_ROWS
on_page = shown[first : first + PAGE_ROWS]
st.dataframe([row(s) for s in on_page], hide_index=True, width="stretch")
if pages > 1:
    st.caption(f"{first + 1}–{first + len(on_page)} of {len(shown)}, most urgent first")

chosen = st.selectbox("Details of", [s.name for s in on_page], key="overview.details")
details(next(s for s in on_page if s.name == chosen))
