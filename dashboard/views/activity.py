"""Sync activity: what the worker did and is doing for a clinic, what failed, and resyncs.

The dashboard never pulls: "Resync" queues a sync request that the worker claims, and
"Retry" puts a dead-lettered item back in line for the next run. While a run is going, the
runs and the queue refresh by themselves.
"""

from __future__ import annotations

import streamlit as st

from core.audit import AuditAction
from core.browse import dead_letters, list_runs, run_duration, run_errors
from core.errors import PacsbridgeError
from core.integrations import list_integrations
from core.store import Integration, RunStatus, SyncRun
from core.sync import list_requests, request_sync, retry_dead_letter
from dashboard._widgets import ago, no_integration_yet, pick_integration, plain, show_error
from dashboard.auth import audit, current_user, require_admin

REFRESH_S = 2.0
ADMINS_ONLY = "Admins only"

user = current_user()
st.title("Sync activity")
integrations = list_integrations()
if not integrations:
    no_integration_yet()
    st.stop()
name = pick_integration([i.name for i in integrations])
integration: Integration = next(i for i in integrations if i.name == name)
assert integration.id is not None


def resync(patient_id: str | None = None) -> None:
    require_admin(user, "queue a resync")
    try:
        queued = request_sync(name, patient_id=patient_id, requested_by=user.username)
    except PacsbridgeError as exc:
        show_error(exc)
        return
    audit(user, AuditAction.QUEUE_RESYNC, integration=name, object_id=queued.scope_value)
    what = f"patient {plain(patient_id.strip())}" if patient_id else name
    st.success(f"Resync of {what} queued (request {queued.id}); the worker takes it shortly.")


clinic_col, patient_col, patient_button_col = st.columns([1, 2, 1], vertical_alignment="bottom")
if clinic_col.button("Resync clinic", disabled=not user.is_admin, help=ADMINS_ONLY):
    resync()
patient_id = patient_col.text_input("Patient ID to resync", key="resync-patient")
if patient_button_col.button("Resync patient", disabled=not user.is_admin, help=ADMINS_ONLY):
    resync(patient_id)


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def run_row(run: SyncRun) -> dict[str, object]:
    return {
        "Run": run.id,
        "Started": ago(run.started_at),
        "Trigger": run.trigger,
        "Scope": f"{run.scope} {run.scope_value or ''}".strip(),
        "Status": run.status,
        "Duration": str(run_duration(run)).split(".")[0],
        "Studies": run.studies,
        "Instances pulled": f"{run.instances_pulled} of {run.instances_found}",
        "Measurements": run.measurements,
        "Requests": run.requests,
        "Bytes": megabytes(run.bytes),
        "Errors": run.errors,
        "Message": run.message,
    }


runs = list_runs(name)
live = any(run.status == RunStatus.RUNNING for run in runs)


@st.fragment(run_every=REFRESH_S if live else None)
def runs_and_queue() -> None:
    runs = list_runs(name)
    running = [run for run in runs if run.status == RunStatus.RUNNING]
    if live and not running:
        st.rerun()  # the run ended: redraw the page once, with its errors, and stop refreshing
    for run in running:
        done, total = run.progress_done, run.progress_total
        st.progress(
            done / total if total else 0.0,
            text=f"Run {run.id} running for {int(run_duration(run).total_seconds())} s: "
            + (f"{done} of {total} items" if total else "searching the PACS…")
            + f" · {run.requests} requests · {megabytes(run.bytes)}",
        )
    st.markdown("#### Runs")
    if runs:
        st.dataframe([run_row(run) for run in runs], hide_index=True)
    else:
        st.info(
            f"No sync run for {name} yet. The worker syncs it every "
            f"{integration.schedule_minutes} min while it is enabled: check that the worker "
            "is running (`pacsbridge worker`), or queue a run with Resync clinic."
        )
    st.markdown("#### Sync requests")
    requests = list_requests(integration.id)
    if not requests:
        st.caption("No sync requests: Resync queues one here for the worker.")
        return
    st.dataframe(
        [
            {
                "Request": r.id,
                "Scope": f"{r.scope} {r.scope_value or ''}".strip(),
                "Requested": ago(r.requested_at),
                "By": r.requested_by,
                "Status": r.status,
                "Run": r.run_id,
                "Error": r.error,
            }
            for r in requests
        ],
        hide_index=True,
    )


runs_and_queue()

failed = [run for run in runs if run.errors]
if failed:
    st.markdown("#### Errors")
    run = st.selectbox(
        "Run", failed, format_func=lambda r: f"run {r.id} · {ago(r.started_at)} · {r.errors} errors"
    )
    st.dataframe(
        [
            {
                "Item": e.item,
                "UID": e.uid,
                "URL": e.url,
                "HTTP status": e.status,
                "Message": e.message,
                "What to do": e.hint,
            }
            for e in run_errors(run.id or 0)
        ],
        hide_index=True,
    )

st.markdown("#### Dead letters")
letters = dead_letters(name)
if not letters:
    st.caption("No dead letters: no item kept failing run after run.")
for letter in letters:
    text_col, button_col = st.columns([5, 1], vertical_alignment="center")
    text_col.markdown(
        f"**{letter.item}** {plain(letter.uid)} · failed {letter.failures} times, last "
        f"{ago(letter.last_failed_at)}: {plain(letter.last_error)}"
        + (f" (HTTP {letter.last_status})" if letter.last_status else "")
    )
    if button_col.button(
        "Retry", key=f"retry-{letter.id}", disabled=not user.is_admin, help=ADMINS_ONLY
    ):
        require_admin(user, "retry dead letters")
        retry_dead_letter(integration.id, letter.uid)
        audit(user, AuditAction.RETRY_DEAD_LETTER, integration=name, object_id=letter.uid)
        text_col.success(f"{plain(letter.uid)} is back in line for the next run.")
