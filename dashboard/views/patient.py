"""Patient measurements: follicle growth, counts, endometrium and early-pregnancy biometry.

Values come from the SR measurements of the patient's pulled studies (core.patient_series);
every point and row leads back to the study it was measured in, on the Studies page. The
patient's ID stays in the session, never in the URL.
"""

from __future__ import annotations

import math
from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from core.audit import AuditAction
from core.integrations import list_integrations
from core.patient_series import SIDES, UNKNOWN_SIDE, Point, patient_series
from dashboard._widgets import (
    keep_phi_out_of_the_url,
    no_integration_yet,
    open_study,
    patient_field,
    pick_integration,
    plain,
)
from dashboard.auth import audit_view, current_user

DAY_MS = 86_400_000  # plotly's date axes count in milliseconds
OVARY = {"left": "Left ovary", "right": "Right ovary", UNKNOWN_SIDE: "Ovary not stated"}
BIOMETRY_COLUMNS = {
    "gestational_sac_diameter": "Gestational sac (mm)",
    "crl": "CRL (mm)",
    "yolk_sac_diameter": "Yolk sac (mm)",
    "fetal_heart_rate": "Fetal heart rate (/min)",
    "gestational_age": "Gestational age",
}

user = current_user()
st.title("Patient measurements")
integrations = list_integrations()
if not integrations:
    no_integration_yet()
    st.stop()
keep_phi_out_of_the_url()
name = pick_integration([i.name for i in integrations])
patient_id = patient_field()
if not patient_id.strip():
    st.info(
        "Enter a patient ID to see the patient's measurements. The Studies page finds it by name."
    )
    st.stop()

found = patient_series(name, patient_id)
audit_view(user, AuditAction.VIEW_PATIENT, name, found.patient_id)
if not found.studies:
    st.warning(
        f"No pulled study of patient {plain(found.patient_id)} in {name}. Check the ID, or look "
        "the patient up on Connection test: the PACS may hold studies that were not pulled yet."
    )
    st.stop()
st.subheader(plain(f"{found.patient_name or 'unnamed'} ({found.patient_id})"))


def chart(figure: go.Figure, key: str, y_title: str) -> None:
    """Draw a chart whose points carry their study UID; clicking one opens that study."""
    days = [day for trace in figure.data for day in trace.x]
    # Whole days only (plotly would add 12:00 ticks on a short cycle), about eight of them.
    step = max(1, math.ceil((max(days) - min(days)).days / 8))
    figure.update_xaxes(tickformat="%b %d", dtick=DAY_MS * step)
    figure.update_layout(height=320, margin={"t": 40, "b": 10}, yaxis_title=y_title)
    state = st.plotly_chart(figure, key=key, on_select="rerun", selection_mode="points")
    if points := state["selection"]["points"]:
        open_study(name, points[0]["customdata"])


def line(points: list[Point], label: str, unit: str) -> go.Scatter:
    return go.Scatter(
        x=[p.day for p in points],
        y=[p.value for p in points],
        customdata=[p.study_uid for p in points],
        mode="lines+markers",
        name=label,
        hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:.1f}} {unit}<extra>{label}</extra>",
    )


def biometry_value(kind: str, value: float | None) -> float | str | None:
    # Gestational age is stored in days and read in weeks and days, as "8w3d".
    if kind == "gestational_age" and value is not None:
        return f"{int(value) // 7}w{int(value) % 7}d"
    return value


def follicle_charts() -> None:
    sides = (
        [*SIDES, UNKNOWN_SIDE] if any(t.side == UNKNOWN_SIDE for t in found.follicles) else SIDES
    )
    # The ovaries share their axes, so the two sides compare at a glance.
    measured = [p for track in found.follicles for p in track.points]
    shared_axes = {
        "xaxis_range": [
            min(p.day for p in measured) - timedelta(days=1),
            max(p.day for p in measured) + timedelta(days=1),
        ],
        "yaxis_range": [0, max(p.value for p in measured) * 1.1],
    }
    for column, side in zip(st.columns(len(sides)), sides, strict=True):
        with column:
            tracks = [t for t in found.follicles if t.side == side]
            if not tracks:
                st.caption(f"{OVARY[side]}: no follicle measured.")
                continue
            figure = go.Figure([line(t.points, f"follicle {t.group}", "mm") for t in tracks])
            figure.update_layout(title=OVARY[side], **shared_axes)
            chart(figure, f"follicles-{side}", "mm")


def counts_chart() -> None:
    bars = []
    for side in sorted({c.side for c in found.follicle_counts}):
        counts = [c for c in found.follicle_counts if c.side == side]
        bars.append(
            go.Bar(
                x=[c.day for c in counts],
                y=[c.count for c in counts],
                customdata=[c.study_uid for c in counts],
                hovertext=[c.source for c in counts],  # "reported" or "measured"
                name=side,
            )
        )
    figure = go.Figure(bars)
    figure.update_layout(barmode="group", xaxis_type="date")
    chart(figure, "counts", "follicles")


def biometry_table() -> None:
    """One row per scan (and fetus); selecting a row opens its study in this session."""
    table = st.dataframe(
        [
            {
                "Date": row.day,
                "Fetus": row.fetus or "",
                **{
                    label: biometry_value(kind, row.values.get(kind))
                    for kind, label in BIOMETRY_COLUMNS.items()
                },
            }
            for row in found.biometry
        ],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="biometry",
    )
    if table.selection.rows:
        open_study(name, found.biometry[table.selection.rows[0]].study_uid)
    st.caption("Select a row, or click a point in a chart, to open its study.")


if not found.has_measurements:
    st.info(
        "No measurements yet: none of this patient's pulled studies has a structured report "
        "with follicle, endometrium or early-pregnancy values. If the scanner sends reports "
        "with private codes, map them on Code mappings."
    )
if found.follicles:
    st.markdown("#### Follicle growth (mean diameter per follicle)")
    follicle_charts()
if found.follicle_counts or found.endometrium:
    counts_col, endometrium_col = st.columns(2)
    with counts_col:
        st.markdown("#### Follicles per side")
        if found.follicle_counts:
            counts_chart()
        else:
            st.caption("No follicle counted or measured.")
    with endometrium_col:
        st.markdown("#### Endometrium thickness")
        if found.endometrium:
            chart(go.Figure(line(found.endometrium, "endometrium", "mm")), "endometrium", "mm")
        else:
            st.caption("Not measured in any report.")
if found.biometry:
    st.markdown("#### Early pregnancy biometry")
    biometry_table()
if found.undated:
    st.caption(f"{found.undated} value(s) not shown: their study has no date.")

st.markdown("#### Studies")
for study in reversed(found.studies):
    if st.button(
        plain(f"{study.day or 'undated'} · {study.description or 'no description'}"),
        key=f"open-{study.study_uid}",
        icon="🖼️",
        type="tertiary",
    ):
        open_study(name, study.study_uid)
