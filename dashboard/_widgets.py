"""Small pieces several pages share: choosing the integration, the empty state, errors, times."""

from __future__ import annotations

import re
from datetime import datetime

import streamlit as st

from core.checks.connection_test import ConnectionTestResult
from core.errors import PacsbridgeError
from core.store import utcnow

# The integration a page opens with, so a link from the Overview (or a bookmark) lands on it.
INTEGRATION_PARAM = "integration"
SETTINGS_PAGE = "views/settings.py"
STUDIES_PAGE = "views/studies.py"
PATIENT_PAGE = "views/patient.py"
# The patient and the study a page opens with travel in the session, never in the URL: a URL
# ends up in browser history, bookmarks and proxy logs, and these identify a patient.
PATIENT_FIELD = "patient"
OPEN_PATIENT = "open.patient"
OPEN_STUDY = "open.study"
PHI_PARAMS = ("patient", "study")  # what older links put in the URL
# CommonMark lets a backslash escape any ASCII punctuation, which then shows as itself; escaping
# all of it leaves no link, image, emphasis, HTML, math or Streamlit directive.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# GFM still turns bare URLs, www. names and e-mail addresses into links after escapes are
# resolved; an invisible word joiner inside "://", "www." and after "@" breaks those patterns.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """`text` escaped to show as written where Streamlit reads markdown (alerts, headings,
    captions, labels). For what a PACS supplies: patient names, descriptions, error texts."""
    unlinked = _AUTOLINK.sub(WORD_JOINER, str(text))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", unlinked)


def keep_phi_out_of_the_url() -> None:
    """Drop ?patient= and ?study= that an older link put in the URL; they are not used."""
    for param in PHI_PARAMS:
        st.query_params.pop(param, None)


def patient_field() -> str:
    """The Patient measurements page's Patient ID field, starting at the patient another page
    opened in this session."""
    if (opened := st.session_state.pop(OPEN_PATIENT, None)) is not None:
        st.session_state[PATIENT_FIELD] = opened
    value: str = st.text_input("Patient ID", key=PATIENT_FIELD)
    return value


def open_patient(integration: str, patient_id: str) -> None:
    """Switch to the patient's measurements, the patient's ID kept in the session."""
    st.session_state[OPEN_PATIENT] = patient_id
    st.switch_page(PATIENT_PAGE, query_params={INTEGRATION_PARAM: integration})


def open_study(integration: str, study_uid: str) -> None:
    """Switch to the study on the Studies page, its UID kept in the session."""
    st.session_state[OPEN_STUDY] = study_uid
    st.switch_page(STUDIES_PAGE, query_params={INTEGRATION_PARAM: integration})


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
    """The cause in red (its text may come from the PACS), and what to do about it."""
    st.error(plain(error))
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
        st.error(plain(result.headline()))
        return
    st.success(plain(result.headline()))
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
