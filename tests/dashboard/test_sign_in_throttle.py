"""The sign-in form backs off after failed attempts and says how long to wait."""

from __future__ import annotations

from core.sign_in import FIRST_WAIT_S, FREE_FAILURES_PER_USER
from dashboard.auth import SESSION_KEY

from .conftest import PASSWORD


def sign_in_with_form(at, username, password):
    at.text_input(key="sign_in.username").input(username)
    at.text_input(key="sign_in.password").input(password)
    return at.button[0].click().run()


def test_after_failures_even_the_right_password_must_wait(app, admin):
    app.run()
    for _ in range(FREE_FAILURES_PER_USER):
        sign_in_with_form(app, "ada", "wrong password!!")
        assert [e.value for e in app.error] == ["Wrong user name or password."]

    sign_in_with_form(app, "ada", PASSWORD)

    assert SESSION_KEY not in app.session_state
    assert [e.value for e in app.error] == [
        "too many failed sign\\-ins for this user name or from this address"
    ]
    assert [c.value for c in app.caption] == [f"Try again in {FIRST_WAIT_S:.0f} s."]
    assert app.text_input(key="sign_in.password").value == ""
