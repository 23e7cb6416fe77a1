"""Studies: find a pulled study, look through its series and images, read its measurements.

The URL carries only the integration (?integration=…); the patient searched for and the study
open stay in the session, so no patient identifier reaches browser history or proxy logs.
Other pages open a study with `open_study`.
"""

from __future__ import annotations

import math

import streamlit as st

from core.audit import AuditAction
from core.browse import (
    PAGE_SIZE,
    NameMatch,
    StudyContents,
    UnknownStudy,
    search_studies,
    study_contents,
)
from core.errors import PacsbridgeError
from core.integrations import list_integrations
from core.measurements import query_measurements
from core.sync import request_sync
from core.viewer import (
    Window,
    cine_clip,
    cine_gif,
    render_frame,
    thumbnail_file,
    viewable_image,
)
from dashboard._widgets import (
    OPEN_STUDY,
    keep_phi_out_of_the_url,
    no_integration_yet,
    open_patient,
    pick_integration,
    plain,
    show_error,
)
from dashboard.auth import audit, audit_view, current_user, require_admin

user = current_user()
st.title("Studies")
integrations = list_integrations()
if not integrations:
    no_integration_yet()
    st.stop()
keep_phi_out_of_the_url()
name = pick_integration([i.name for i in integrations])

with st.form("search", border=False):
    id_col, name_col, match_col, dates_col = st.columns([2, 3, 2, 3])
    patient_id = id_col.text_input("Patient ID", key="search.patient")
    patient_name = name_col.text_input("Patient name", placeholder="e.g. jansen emma")
    name_match = match_col.radio(
        "Name", list(NameMatch), format_func=lambda m: m.value.replace("prefix", "starts with")
    )
    dates = dates_col.date_input("Study date from – to", value=(), format="YYYY-MM-DD")
    st.form_submit_button("Search")

# One pager per search, so a new search starts on its first page.
pager = f"page:{name}:{patient_id}:{patient_name}:{name_match}:{dates}"
page_number = st.session_state.get(pager, 1)
try:
    found = search_studies(
        name,
        patient_id=patient_id,
        patient_name=patient_name,
        name_match=name_match,
        date_from=dates[0] if len(dates) > 0 else None,
        date_to=dates[1] if len(dates) > 1 else None,
        offset=(page_number - 1) * PAGE_SIZE,
    )
except PacsbridgeError as exc:
    show_error(exc)
    st.stop()

if found.total == 0:
    if patient_id or patient_name or dates:
        st.warning(
            "No pulled study matches. Widen the search, or look the patient up on "
            "Connection test to see what the PACS holds."
        )
    else:
        st.info(
            f"Nothing pulled from {name} yet. The worker pulls on the integration's schedule; "
            "Sync activity shows its runs and errors and can queue a resync."
        )
        st.page_link("views/activity.py", label="Open Sync activity", icon="🔄")
    st.stop()


def day(study_date: str | None) -> str:
    """DICOM DA (YYYYMMDD) as people read it."""
    return f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}" if study_date else "undated"


first, last = (page_number - 1) * PAGE_SIZE + 1, (page_number - 1) * PAGE_SIZE + len(found.rows)
st.caption(
    f"{found.total} {'study' if found.total == 1 else 'studies'} found · showing {first}–{last}"
)
table = st.dataframe(
    [
        {
            "Date": day(s.study_date),
            "Patient ID": s.patient_id,
            "Patient name": s.patient_name,
            "Description": s.description,
            "Modalities": (s.modalities or "").replace("\\", ", "),
            "Pulled": f"{found.pulled.get(s.study_uid, 0)} / {s.remote_instance_count or '?'}",
            "Study UID": s.study_uid,
        }
        for s in found.rows
    ],
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="found",
)
st.pagination(math.ceil(found.total / PAGE_SIZE), key=pager)
if table.selection.rows:
    st.session_state[OPEN_STUDY] = found.rows[table.selection.rows[0]].study_uid


def viewer(instance_id: int) -> None:
    """One stored image: a frame slider for cine loops, window/level for monochrome."""
    image = viewable_image(instance_id)
    frame = 1
    if image.frames > 1:
        frame = st.slider("Frame", 1, image.frames, 1, key=f"frame-{instance_id}")
    window = None
    if stored := image.default_window:
        # The sliders span the stored bits' values, and the instance's own window if wider.
        low = int(min(image.value_range[0], stored.center))
        high = int(max(image.value_range[1], stored.center))
        widest = int(max(high - low + 1, stored.width))
        window = Window(
            st.slider(
                "Window centre (level)", low, high, int(stored.center), key=f"level-{instance_id}"
            ),
            st.slider("Window width", 1, widest, int(stored.width), key=f"width-{instance_id}"),
        )
    if image.frames > 1 and st.toggle("Play loop", key=f"play-{instance_id}"):
        clip = cine_clip(instance_id, frame)
        st.image(
            cine_gif(instance_id, window, frame),
            caption=f"frames {clip.start}–{clip.stop - 1} of {image.frames}, looping",
        )
    else:
        pixels = render_frame(instance_id, frame, window)
        st.image(pixels, caption=f"frame {frame} of {image.frames}", width="stretch")


def show_study(contents: StudyContents) -> None:
    study = contents.study
    st.subheader(plain(f"{day(study.study_date)} · {study.patient_name} ({study.patient_id})"))
    st.caption(plain(f"{study.description or 'no description'} · {study.study_uid}"))
    if study.patient_id and st.button("This patient's measurements", icon="📈"):
        open_patient(name, study.patient_id)
    if st.button("Resync this study", disabled=not user.is_admin, help="Admins only"):
        require_admin(user, "queue a resync")
        queued = request_sync(name, study_uid=study.study_uid, requested_by=user.username)
        audit(user, AuditAction.QUEUE_RESYNC, integration=name, object_id=study.study_uid)
        st.success(f"Resync queued (request {queued.id}); follow it on Sync activity.")
    images_col, measurements_col = st.columns([3, 2])
    with images_col:
        images: dict[int, str] = {}  # instance id → its name in the image picker
        for part in contents.series:
            label = f"Series {part.series.series_number} · {part.series.modality}"
            with st.expander(
                plain(
                    f"{label} · {part.series.description or ''} ({len(part.instances)} of "
                    f"{part.series.remote_instance_count or '?'} instances pulled)"
                ),
                expanded=True,
            ):
                thumbnails = [(i, path) for i in part.instances if (path := thumbnail_file(i))]
                if thumbnails:
                    st.image(
                        [str(path) for _, path in thumbnails],
                        caption=[f"#{i.instance_number}" for i, _ in thumbnails],
                        width=128,
                    )
            images |= {
                i.id: f"{label} · #{i.instance_number} · {i.number_of_frames or 1} frame(s)"
                for i in part.instances
                if i.id and i.files_path
            }
        if images:
            chosen = st.selectbox("Image", list(images), format_func=images.__getitem__)
            try:
                viewer(chosen)
            except PacsbridgeError as exc:
                st.warning(plain(exc.describe()))
    with measurements_col:
        st.markdown("**SR measurements**")
        rows = query_measurements(name, study_uid=study.study_uid)
        if not rows:
            st.caption("No measurements: this study has no structured report pulled.")
        else:
            st.dataframe(
                [
                    {
                        "Kind": m.kind,
                        "Value": m.value,
                        "Unit": m.unit,
                        "Side": m.laterality or "",
                        "Group": m.group or "",
                        "Reported": m.reported,
                    }
                    for m in rows
                ],
                hide_index=True,
            )


if selected := st.session_state.get(OPEN_STUDY):
    try:
        contents = study_contents(name, selected)
    except UnknownStudy:
        # Also what is left open after switching to another integration.
        st.info(
            plain(f"Study {selected} is not among the pulled studies of {name}: pick one above.")
        )
    except PacsbridgeError as exc:
        show_error(exc)
    else:
        audit_view(user, AuditAction.VIEW_STUDY, name, contents.study.study_uid)
        show_study(contents)
