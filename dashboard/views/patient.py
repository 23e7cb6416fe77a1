"""Patient measurements: stimulation cycles, follicle counts, endometrium, early-pregnancy
biometry, and the patient's measurements as CSV or FHIR to download.

Values come from the SR measurements of the patient's pulled studies (core.cycles,
core.patient_series, core.exports); every point and row leads back to the study it was
measured in, on the Studies page. The trigger criterion is the clinic's own setting, marked as
information for the clinician, never as an instruction. The patient's ID stays in the
session, never in the URL.
"""

from __future__ import annotations

import math
from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from core.audit import AuditAction
from core.cycles import SIDES, Cycle, CycleScan, MonitoringSettings, patient_cycles
from core.exports import ExportFormat, export_measurements
from core.integrations import list_integrations
from core.patient_series import Point, patient_series
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
OVARY = {"left": "Left ovary", "right": "Right ovary", None: "Ovary not stated"}
SIDE_SHORT = {"left": "L", "right": "R"}
RANKS = ("largest", "second", "third")  # the leading follicles, followed by rank
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


def study_table(rows: list[dict[str, object]], study_uids: list[str], key: str) -> None:
    """A table with a row per study; selecting a row opens that study in this session."""
    table = st.dataframe(
        rows, hide_index=True, on_select="rerun", selection_mode="single-row", key=key
    )
    if table.selection.rows:
        open_study(name, study_uids[table.selection.rows[0]])


def pick_cycle(cycles: list[Cycle]) -> Cycle:
    """The newest cycle unless another one is chosen."""
    if len(cycles) == 1:
        return cycles[0]
    labels = [
        f"Cycle {n}: {c.start} to {c.end} ({len(c.scans)} scans)" for n, c in enumerate(cycles, 1)
    ]
    chosen = st.selectbox(
        "Cycle",
        range(len(cycles)),
        index=len(cycles) - 1,
        format_func=labels.__getitem__,
        key="cycle",
    )
    return cycles[chosen]


def cycle_table(cycle: Cycle, settings: MonitoringSettings) -> None:
    """One row per scan, as on a monitoring sheet; selecting a row opens its study."""

    def row(scan: CycleScan) -> dict[str, object]:
        shown: dict[str, object] = {"Date": scan.study_date, "Day": scan.day}
        for side in SIDES:
            ovary = scan.ovaries[side]
            short = SIDE_SHORT[side]
            for threshold, count in ovary.at_least_mm.items():
                shown[f"{short} ≥{threshold:g}"] = count
            shown[f"{short} leading (mm)"] = " · ".join(f"{d:g}" for d in ovary.leading())
            shown[f"{short} count"] = ovary.count_reported
        shown["Endometrium (mm)"] = scan.endometrium_mm
        shown["Trigger criterion"] = "met" if scan.trigger_criterion_met else ""
        return shown

    study_table(
        [row(scan) for scan in cycle.scans], [s.study_uid for s in cycle.scans], "cycle-scans"
    )
    st.caption(
        f"Counts per ovary of follicles at least each size (mm); leading: the three largest; "
        f"count: as the report states it. Trigger criterion (this clinic's setting: "
        f"{settings.trigger_text}): marked where met, as information for the clinician."
    )


def diameters(scan: CycleScan, side: str | None) -> tuple[float, ...]:
    """One ovary's follicles of a scan, largest first (side None: those of no stated side)."""
    return scan.ovaries[side].diameters_mm if side else scan.side_not_stated


def follicle_strip(cycle: Cycle, side: str | None, settings: MonitoringSettings) -> go.Figure:
    """Each scan's follicles of one ovary as dots per day, the leading three by rank as lines,
    the thresholds as dotted lines and the days the trigger criterion is met marked."""

    dots = [(scan, d) for scan in cycle.scans for d in diameters(scan, side)]
    figure = go.Figure(
        go.Scatter(
            x=[scan.study_date for scan, _ in dots],
            y=[d for _, d in dots],
            customdata=[scan.study_uid for scan, _ in dots],
            mode="markers",
            marker={"color": "rgba(90, 90, 90, 0.55)", "size": 8},
            name="follicle",
            hovertemplate="%{x|%Y-%m-%d}: %{y:.1f} mm<extra>follicle</extra>",
        )
    )
    for rank, label in enumerate(RANKS):
        ranked = [scan for scan in cycle.scans if len(diameters(scan, side)) > rank]
        figure.add_trace(
            go.Scatter(
                x=[scan.study_date for scan in ranked],
                y=[diameters(scan, side)[rank] for scan in ranked],
                customdata=[scan.study_uid for scan in ranked],
                mode="lines",
                name=label,
                hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:.1f}} mm<extra>{label}</extra>",
            )
        )
    for threshold in settings.thresholds_mm:
        figure.add_hline(y=threshold, line={"dash": "dot", "width": 1, "color": "#bbbbbb"})
    for scan in cycle.scans:
        if scan.trigger_criterion_met:
            figure.add_shape(
                type="line",
                x0=scan.study_date,
                x1=scan.study_date,
                yref="paper",
                y0=0,
                y1=1,
                line={"color": "#2a9d8f", "width": 2, "dash": "dash"},
            )
            figure.add_annotation(
                x=scan.study_date,
                y=1,
                yref="paper",
                text="criterion met",
                showarrow=False,
                yanchor="bottom",
                font={"color": "#2a9d8f"},
            )
    return figure


def follicle_charts(cycle: Cycle, settings: MonitoringSettings) -> None:
    sides: list[str | None] = list(SIDES)
    if any(scan.side_not_stated for scan in cycle.scans):
        sides.append(None)
    # The ovaries share their axes, so the two sides compare at a glance.
    largest = max(
        (d for scan in cycle.scans for side in sides for d in diameters(scan, side)), default=0.0
    )
    shared_axes = {
        "xaxis_range": [
            cycle.start - timedelta(days=1),
            cycle.end + timedelta(days=1),
        ],
        "yaxis_range": [0, max(largest, *settings.thresholds_mm) * 1.1],
    }
    for column, side in zip(st.columns(len(sides)), sides, strict=True):
        with column:
            if not any(diameters(scan, side) for scan in cycle.scans):
                st.caption(f"{OVARY[side]}: no follicle measured.")
                continue
            figure = follicle_strip(cycle, side, settings)
            figure.update_layout(title=OVARY[side], showlegend=False, **shared_axes)
            chart(figure, f"follicles-{side or 'side-not-stated'}", "mm")


def downloads() -> None:
    """The patient's measurements for other systems: CSV, and FHIR R4 Observations."""
    csv_column, fhir_column = st.columns(2)
    stem = f"{found.patient_id}-measurements"
    csv_column.download_button(
        "Download CSV",
        export_measurements(name, found.patient_id, ExportFormat.CSV),
        file_name=f"{stem}.csv",
        mime="text/csv",
    )
    fhir_column.download_button(
        "Download FHIR R4 (JSON)",
        export_measurements(name, found.patient_id, ExportFormat.FHIR),
        file_name=f"{stem}.fhir.json",
        mime="application/fhir+json",
    )


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
    """One row per scan (and fetus)."""
    study_table(
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
        [row.study_uid for row in found.biometry],
        "biometry",
    )
    st.caption("Select a row, or click a point in a chart, to open its study.")


if not found.has_measurements:
    st.info(
        "No measurements yet: none of this patient's pulled studies has a structured report "
        "with follicle, endometrium or early-pregnancy values. If the scanner sends reports "
        "with private codes, map them on Code mappings."
    )
monitoring = patient_cycles(name, found.patient_id)
if monitoring.cycles:
    st.markdown("#### Stimulation monitoring")
    cycle = pick_cycle(monitoring.cycles)
    cycle_table(cycle, monitoring.settings)
    follicle_charts(cycle, monitoring.settings)
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

if found.has_measurements:
    downloads()

st.markdown("#### Studies")
for study in reversed(found.studies):
    if st.button(
        plain(f"{study.day or 'undated'} · {study.description or 'no description'}"),
        key=f"open-{study.study_uid}",
        icon="🖼️",
        type="tertiary",
    ):
        open_study(name, study.study_uid)
