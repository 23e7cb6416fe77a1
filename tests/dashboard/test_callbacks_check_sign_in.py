"""State-changing callbacks check sign-in and role themselves.

Streamlit runs `on_click`/`on_change` callbacks before the page's script, so the page's own
sign-in and admin checks come too late to stop them. Each test leaves a browser tab showing the
settings page, changes what the session or the store says about its user, and then clicks.
"""

from __future__ import annotations

import ast
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select
from streamlit.proto.WidgetStates_pb2 import WidgetStates

from core import store
from core.integrations import add_integration, get_integration, list_integrations
from core.settings.model import IntegrationSettings
from core.store import User, UserRole
from core.users import add_user, remove_user
from dashboard.auth import SESSION_KEY

from .conftest import PASSWORD

PAGE = "views/settings.py"
DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


@pytest.fixture
def north() -> None:
    add_integration(
        IntegrationSettings(name="north", base_uri="https://pacs.north.example/dicom-web/"), None
    )


def expire(at) -> None:
    signed_in = at.session_state[SESSION_KEY]
    at.session_state[SESSION_KEY] = replace(signed_in, last_activity=time.time() - 31 * 60)


def demote(at) -> None:
    with store.session() as db:
        account = db.exec(select(User).where(User.username == "ada")).one()
        account.role = UserRole.VIEWER
        db.add(account)


def remove_account(at) -> None:
    remove_user("ada")


def button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


@pytest.mark.parametrize("change", [expire, demote, remove_account])
def test_disable_does_nothing_once_the_user_may_no_longer_change_settings(
    open_page, admin, north, change
):
    add_user("grace", PASSWORD, "admin")  # the last admin could not be removed
    at = open_page(PAGE, admin, integration="north")
    change(at)

    button(at, "Disable").click().run()

    assert get_integration("north").enabled is True
    assert not at.exception
    assert "north disabled." not in [s.value for s in at.success]


def test_remove_does_nothing_after_the_session_timed_out(open_page, admin, north):
    at = open_page(PAGE, admin, integration="north")
    next(t for t in at.text_input if t.key.endswith(".confirm")).input("north").run()
    expire(at)

    button(at, "Remove").click().run()

    assert [i.name for i in list_integrations()] == ["north"]
    assert any("without activity" in i.value for i in at.info)


def test_save_does_nothing_after_the_session_timed_out(open_page, admin, north):
    at = open_page(PAGE, admin, integration="north")
    next(n for n in at.number_input if n.key.endswith(".schedule_minutes")).set_value(7).run()
    expire(at)

    button(at, "Save").click().run()

    assert get_integration("north").schedule_minutes != 7


def test_a_signed_out_tab_cannot_replay_a_stale_admin_widget(open_page, admin, north):
    """After signing out, the page shows only the sign-in form, but Streamlit still keeps the
    callbacks of the widgets the last signed-in run drew; a forged websocket message naming
    the old Disable button's id would run its callback."""
    at = open_page(PAGE, admin, integration="north")
    stale = button(at, "Disable")
    at.sidebar.button[0].click().run()  # Sign out
    assert SESSION_KEY not in at.session_state

    forged = WidgetStates()
    forged.widgets.append(stale.click()._widget_state)
    at._run(forged)  # what the browser would send: only the stale button's trigger

    assert get_integration("north").enabled is True
    assert [t.label for t in at.text_input] == ["User name", "Password"]


# Callbacks that change nothing but the session's own form, or sign in and out.
FORM_ONLY_CALLBACKS = {"fill_from_preset", "_sign_out", "_check_sign_in"}


def test_every_callback_that_changes_state_checks_sign_in_and_role():
    """A page added later with an unchecked on_click/on_change fails here."""
    unchecked = []
    for path in sorted(DASHBOARD.rglob("*.py")):
        tree = ast.parse(path.read_text())
        checked = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef)
            and any(getattr(d, "id", None) == "admin_action" for d in node.decorator_list)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in ("on_click", "on_change"):
                name = getattr(node.value, "id", ast.unparse(node.value))
                if name not in checked | FORM_ONLY_CALLBACKS:
                    unchecked.append(f"{path.name}: {node.arg}={name}")
    assert unchecked == []
