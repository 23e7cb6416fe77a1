"""What the PACS supplies is shown as plain text, and no patient identifier goes into the URL."""

from __future__ import annotations

import pytest

from core import store
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import DeadLetter, HealthCheck, Study
from dashboard._widgets import OPEN_PATIENT, OPEN_STUDY, WORD_JOINER, plain

# A patient name (or an error text) a hostile or careless PACS could send: as markdown it is a
# link that looks like the dashboard's own.
EVIL = "[Sign in again](https://evil.example/login)"
# Elements whose text Streamlit shows as it is, without reading markdown.
PLAIN_ELEMENTS = {"arrow_data_frame", "text", "code"}


def markdown_sent(at) -> str:
    """The texts of everything the page sends that the browser reads as markdown: alerts,
    headings, captions, markdown, labels of buttons, links and expanders."""
    return "\n".join(
        value
        for root in (at.main, at.sidebar)
        for node in root
        if getattr(node, "proto", None) is not None and node.type not in PLAIN_ELEMENTS
        for _, value in node.proto.ListFields()
        if isinstance(value, str)
    )


@pytest.fixture
def hostile_clinic() -> int:
    record = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    with store.session() as db:
        db.add(
            Study(
                integration_id=record.id,
                study_uid="1.2.5",
                patient_id="FC-2000",
                patient_name=EVIL,
                description=EVIL,
                study_date="20261101",
            )
        )
        db.add(
            DeadLetter(
                integration_id=record.id,
                item="instance",
                uid="1.2.5.1",
                failures=5,
                dead=True,
                last_error=f"HTTP 500: {EVIL}",
            )
        )
        db.add(HealthCheck(integration_id=record.id, ok=False, error=f"HTTP 503: {EVIL}"))
    return record.id


def test_patient_names_and_descriptions_are_not_read_as_markdown(hostile_clinic, open_page, viewer):
    studies = open_page("views/studies.py", viewer, session={OPEN_STUDY: "1.2.5"})
    assert not studies.exception
    assert plain(EVIL) in studies.subheader[0].value  # shown, escaped
    assert EVIL not in markdown_sent(studies)

    studies.switch_page("views/patient.py").run()
    studies.text_input(key="patient").input("FC-2000").run()
    assert plain(EVIL) in studies.subheader[0].value
    assert EVIL not in markdown_sent(studies)


@pytest.mark.parametrize("page", ["views/activity.py", "views/overview.py"])
def test_pacs_error_texts_are_not_read_as_markdown(hostile_clinic, open_page, viewer, page):
    at = open_page(page, viewer)

    assert not at.exception
    assert plain(EVIL) in markdown_sent(at)
    assert EVIL not in markdown_sent(at)


def test_plain_leaves_nothing_markdown_could_act_on():
    escaped = plain("a_b *c* <img src=x> :red[x] $x$ https://evil.example `c` \\ a@b.example")

    assert escaped == (
        r"a\_b \*c\* \<img src\=x\> \:red\[x\] \$x\$ https\:" + WORD_JOINER + r"\/\/evil\.example "
        r"\`c\` \\ a\@" + WORD_JOINER + r"b\.example"
    )


# --- no patient identifier in the URL -------------------------------------------------------


def test_patient_and_study_stay_out_of_the_url(hostile_clinic, open_page, viewer):
    at = open_page("views/patient.py", viewer, integration="clinic")
    at.text_input(key="patient").input("FC-2000").run()
    assert dict(at.query_params) == {"integration": "clinic"}

    next(b for b in at.button if (b.key or "").startswith("open-")).click().run()
    assert [t.value for t in at.title] == ["Studies"]
    assert plain("FC-2000") in at.subheader[0].value  # the study opened
    assert dict(at.query_params) == {"integration": "clinic"}

    # AppTest reruns the page it last switched to itself, not the one the script switched to.
    at.switch_page("views/studies.py")
    next(b for b in at.button if b.label == "This patient's measurements").click().run()
    assert [t.value for t in at.title] == ["Patient measurements"]
    assert at.text_input(key="patient").value == "FC-2000"
    assert dict(at.query_params) == {"integration": "clinic"}


def test_an_old_link_with_patient_and_study_loses_them(hostile_clinic, open_page, viewer):
    at = open_page("views/studies.py", viewer, integration="clinic", patient="FC-2000")
    assert dict(at.query_params) == {"integration": "clinic"}

    at = open_page("views/patient.py", viewer, integration="clinic", study="1.2.5")
    assert dict(at.query_params) == {"integration": "clinic"}
    assert OPEN_PATIENT not in at.session_state
