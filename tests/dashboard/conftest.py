"""Shared fixtures for the dashboard's AppTest tests: users, signing in, opening a page."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import core.sign_in
from core import users
from core.sign_in import SignInThrottle
from core.store import User
from dashboard.auth import SESSION_KEY, SignedIn

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PASSWORD = "correct horse battery staple"
STOPPED_CLOCK_S = 1_000.0


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests create and sign in many users; the real scrypt cost would take seconds each.

    Stored hashes name their own cost, so verification runs the same code either way; one
    test in test_auth_and_users.py checks the production cost.
    """
    monkeypatch.setattr(users, "COST", users.ScryptCost(n=2**10))
    users._dummy_hash.cache_clear()


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle(monkeypatch: pytest.MonkeyPatch) -> SignInThrottle:
    """Failed sign-ins of one test must not make another wait. Its clock stands still, so a
    wait the form reports is the one imposed, however long the app's runs take."""
    throttle = SignInThrottle(clock=lambda: STOPPED_CLOCK_S)
    monkeypatch.setattr(core.sign_in, "THROTTLE", throttle)
    return throttle


@pytest.fixture
def app() -> AppTest:
    """The dashboard, not yet run."""
    return AppTest.from_file(str(APP), default_timeout=30)


@pytest.fixture
def admin() -> User:
    return users.add_user("ada", PASSWORD, "admin")


@pytest.fixture
def viewer() -> User:
    return users.add_user("vic", PASSWORD, "viewer")


def sign_in(at: AppTest, user: User) -> AppTest:
    """Put `user` in the session as the sign-in form's callback would."""
    at.session_state[SESSION_KEY] = SignedIn(user.username, user.role, time.time())
    return at


@pytest.fixture
def open_page(app: AppTest) -> Callable[..., AppTest]:
    """open_page("views/settings.py", user, integration="clinic") → the rendered AppTest.

    The first run registers the pages with st.navigation; query parameters are given as the
    Overview's links give them, and `session` as another page would leave it (the patient and
    the study a page opens with travel in the session, not in the URL).
    """

    def opened(
        page: str, user: User | None, *, session: dict[str, str] | None = None, **query_params: str
    ) -> AppTest:
        if user is not None:
            sign_in(app, user)
        for key, value in (session or {}).items():
            app.session_state[key] = value
        app.run()
        app.query_params.update(query_params)
        return app.switch_page(page).run()

    return opened


def page_text(at: AppTest) -> str:
    """Everything the page sends to the browser, as text: every element's proto and value."""
    parts = []
    for node in [*at.main, *at.sidebar]:
        parts.append(str(getattr(node, "proto", "")))
        with suppress(AttributeError, NotImplementedError):  # blocks have no value
            parts.append(repr(node.value))  # type: ignore[union-attr]
    return "\n".join(parts)


def texts(elements: object) -> list[str]:
    """The values of an ElementList, e.g. texts(at.error)."""
    return [str(e.value) for e in elements]  # type: ignore[attr-defined]


def shown(markdown: str) -> str:
    """What a reader sees of a text the page escaped for markdown: the escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)
