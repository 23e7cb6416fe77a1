"""Users and passwords (core.users, `pacsbridge users`), and signing in to the dashboard."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from core import store
from core.errors import InvalidInput
from core.store import UserRole
from core.users import (
    ScryptCost,
    UnknownUser,
    UserExists,
    add_user,
    get_user,
    hash_password,
    list_users,
    remove_user,
    set_password,
    verify_login,
    verify_password,
)
from dashboard.auth import SESSION_KEY
from pacsbridge.cli import main

from .conftest import PASSWORD, page_text, sign_in

MY_PAGES = ["views/overview.py", "views/settings.py", "views/connection.py", "views/mappings.py"]


# --- passwords and accounts -----------------------------------------------------------------


def test_a_hash_names_its_algorithm_and_cost_and_salts_every_password():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)

    assert first.startswith("scrypt$n=1024,r=8,p=1$")
    assert first != second  # a fresh salt each time
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first)
    assert not verify_password(PASSWORD + "x", first)


def test_the_production_cost_is_owasps_and_verifies():
    stored = hash_password(PASSWORD, ScryptCost())

    assert stored.startswith("scrypt$n=131072,r=8,p=1$")
    assert verify_password(PASSWORD, stored)


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y$z", "scrypt$n=x$a$b", "scrypt$n=2$$"])
def test_a_malformed_hash_matches_nothing(stored):
    assert not verify_password(PASSWORD, stored)


def test_the_store_holds_only_the_hash(pacsbridge_home):
    add_user("ada", PASSWORD, "admin")

    with store.engine().connect() as db:
        rows = db.execute(text('SELECT * FROM "user"')).all()
    assert len(rows) == 1
    assert PASSWORD not in repr(rows)
    assert any(str(value).startswith("scrypt$") for value in rows[0])


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("ada", "short", "viewer", "at least 12 are needed"),
        ("ada", " " * 20, "viewer", "only spaces"),
        ("ada.lovelace", "Ada.Lovelace", "viewer", "the password is the user name"),
        ("ada", PASSWORD, "owner", "unknown role 'owner'"),
        ("-ada", PASSWORD, "viewer", "not a usable user name"),
        ("", PASSWORD, "viewer", "not a usable user name"),
    ],
)
def test_bad_accounts_are_refused_with_a_hint(name, password, role, message):
    with pytest.raises(InvalidInput, match=message) as caught:
        add_user(name, password, role)

    assert caught.value.hint
    assert list_users() == []


def test_names_are_unique_regardless_of_case():
    add_user("Ada", PASSWORD)

    with pytest.raises(UserExists):
        add_user(" ADA ", PASSWORD)
    assert [u.username for u in list_users()] == ["ada"]


def test_sign_in_checks_the_password_and_records_the_time():
    add_user("ada", PASSWORD, "admin")

    assert verify_login("ada", "not the password") is None
    assert verify_login("nobody", PASSWORD) is None
    user = verify_login(" ADA ", PASSWORD)
    assert user is not None
    assert user.role is UserRole.ADMIN
    assert get_user("ada").last_login_at is not None


def test_a_new_password_replaces_the_old():
    add_user("vic", PASSWORD)

    set_password("vic", "another long passphrase")

    assert verify_login("vic", PASSWORD) is None
    assert verify_login("vic", "another long passphrase") is not None
    with pytest.raises(UnknownUser):
        set_password("nobody", "another long passphrase")


def test_the_last_admin_cannot_be_removed():
    add_user("ada", PASSWORD, "admin")
    add_user("vic", PASSWORD)

    with pytest.raises(InvalidInput, match="only admin"):
        remove_user("ada")
    remove_user("vic")
    assert [u.username for u in list_users()] == ["ada"]


# --- `pacsbridge users` ---------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_adds_lists_and_removes_users_without_printing_the_password(capsys, monkeypatch):
    monkeypatch.setenv("PACSBRIDGE_SECRET", PASSWORD)

    added = [
        run(capsys, "users", "add", "ada", "--role", "admin"),
        run(capsys, "users", "add", "vic", "--json"),
    ]
    listed = run(capsys, "users", "list", "--json")
    removed = run(capsys, "users", "remove", "vic")

    assert [code for code, _, _ in [*added, listed, removed]] == [0, 0, 0, 0]
    assert "Added admin ada" in added[0][1]
    assert [(u["username"], u["role"]) for u in json.loads(listed[1])] == [
        ("ada", "admin"),
        ("vic", "viewer"),
    ]
    assert all(PASSWORD not in out + err for _, out, err in [*added, listed, removed])
    assert [u.username for u in list_users()] == ["ada"]


@pytest.mark.parametrize(
    ("argv", "secret", "message"),
    [
        (["users", "add", "ada"], "short", "at least 12"),
        (["users", "add", "ada"], None, "no password given"),
        (["users", "add", "ada", "--role", "owner"], PASSWORD, "invalid choice"),
        (["users", "remove", "nobody"], None, "no user named 'nobody'"),
        (["users", "password", "nobody"], PASSWORD, "no user named 'nobody'"),
    ],
)
def test_cli_mistakes_exit_2_with_the_cause(capsys, monkeypatch, argv, secret, message):
    if secret:
        monkeypatch.setenv("PACSBRIDGE_SECRET", secret)

    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as exit_:  # argparse's own refusal
        code, err = exit_.code, capsys.readouterr().err

    assert code == 2
    assert message in err


def test_cli_list_says_how_to_create_the_first_admin(capsys):
    code, out, _ = run(capsys, "users", "list")

    assert code == 0
    assert "pacsbridge users add NAME --role admin" in out


# --- signing in to the dashboard ------------------------------------------------------------


def sign_in_with_form(at, username, password):
    at.text_input(key="sign_in.username").input(username)
    at.text_input(key="sign_in.password").input(password)
    return at.button[0].click().run()


def assert_sign_in_form(at):
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert not at.title or [t.value for t in at.title] == ["pacsbridge"]


def test_without_users_the_form_says_how_to_create_the_first_admin(app):
    app.run()

    assert_sign_in_form(app)
    assert "pacsbridge users add NAME --role admin" in [c.value for c in app.code]


@pytest.mark.parametrize("when", ["before it started", "while it runs"])
def test_a_store_upgraded_by_a_newer_pacsbridge_is_said_before_signing_in(app, admin, when):
    if when == "while it runs":
        app.run()
        assert_sign_in_form(app)
    with store.engine().begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    if when == "before it started":
        store.dispose()

    app.run()

    assert not app.exception
    assert ["revision 9001" in error.value for error in app.error] == [True]
    assert "version that the other hosts run" in app.caption[0].value
    assert not app.text_input  # no sign-in form that could only fail


@pytest.mark.store_free
def test_a_store_that_does_not_answer_is_said_without_its_password(app, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://clinic:s3cret@127.0.0.1:1/pacsbridge")
    store.dispose()

    app.run()

    assert not app.exception
    (error,) = app.error
    assert "did not answer" in error.value
    assert "s3cret" not in error.value
    assert "database server named by $DATABASE_URL" in app.caption[0].value


@pytest.mark.parametrize("page", MY_PAGES)
def test_every_page_needs_sign_in(app, admin, page):
    app.run()
    app.switch_page(page).run()

    assert_sign_in_form(app)
    assert not app.dataframe
    assert not app.selectbox
    assert not app.code  # users exist: no first-admin instructions


def test_a_wrong_password_is_refused_and_the_field_emptied(app, admin):
    sign_in_with_form(app.run(), "ada", "wrong password!!")

    assert [e.value for e in app.error] == ["Wrong user name or password."]
    assert_sign_in_form(app)
    assert app.text_input(key="sign_in.password").value == ""
    assert SESSION_KEY not in app.session_state


def test_signing_in_opens_the_overview_and_keeps_no_password(app, admin):
    sign_in_with_form(app.run(), "ada", PASSWORD)

    assert [t.value for t in app.title] == ["Overview"]
    assert "Signed in as **ada** (admin)" in [c.value for c in app.sidebar.caption]
    assert PASSWORD not in page_text(app)
    assert PASSWORD not in repr(app.session_state.to_dict())
    signed_in = app.session_state[SESSION_KEY]
    assert (signed_in.username, signed_in.role) == ("ada", UserRole.ADMIN)


def test_sign_out_returns_to_the_form(app, admin):
    sign_in(app, admin).run()

    app.sidebar.button[0].click().run()

    assert_sign_in_form(app)
    assert "You signed out." in [i.value for i in app.info]


@pytest.mark.parametrize(("minutes", "idle"), [(None, 31), ("5", 6)])
def test_an_idle_session_times_out(app, admin, monkeypatch, minutes, idle):
    if minutes:
        monkeypatch.setenv("PACSBRIDGE_SESSION_MINUTES", minutes)
    sign_in(app, admin).run()
    app.switch_page("views/settings.py").run()
    assert [t.value for t in app.title] == ["Integration settings"]

    signed_in = app.session_state[SESSION_KEY]
    app.session_state[SESSION_KEY] = replace(signed_in, last_activity=time.time() - idle * 60)
    app.run()

    assert_sign_in_form(app)
    assert any("without activity" in i.value for i in app.info)
    assert SESSION_KEY not in app.session_state


def test_activity_keeps_the_session(app, admin):
    sign_in(app, admin).run()
    signed_in = app.session_state[SESSION_KEY]
    app.session_state[SESSION_KEY] = replace(signed_in, last_activity=time.time() - 29 * 60)

    app.run()

    assert [t.value for t in app.title] == ["Overview"]
    assert time.time() - app.session_state[SESSION_KEY].last_activity < 60


def test_a_removed_account_is_signed_out_at_once(app, admin, viewer):
    sign_in(app, viewer).run()

    remove_user("vic")
    app.run()

    assert_sign_in_form(app)
    assert any("no longer exists" in i.value for i in app.info)
