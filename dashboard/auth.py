"""Signing in to the dashboard, session timeout, the admin-only guards, and audit records.

Accounts live in the store (`pacsbridge users add`). The session keeps only the user's name,
role and last activity: the password is checked in the sign-in callback (through
core.sign_in, which backs off after failures) and its field is emptied there, so it is
neither kept in the session nor sent back to the browser. The account is read again on every
run, and by every state-changing callback (`admin_action`), so a removed user or a changed
role takes effect at once.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec

import streamlit as st

from core.audit import AuditAction, record
from core.errors import PacsbridgeError
from core.sign_in import SignInRefused, sign_in
from core.store import User, UserRole
from core.users import get_user, has_users
from dashboard._widgets import show_error

SESSION_KEY = "pacsbridge.signed_in"
TIMEOUT_ENV = "PACSBRIDGE_SESSION_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 30.0
_NOTICE_KEY = "pacsbridge.sign_in_notice"
_VIEWED_KEY = "pacsbridge.viewed"
_FAILED_KEY = "pacsbridge.sign_in_failed"
_USERNAME_KEY = "sign_in.username"
_PASSWORD_KEY = "sign_in.password"  # noqa: S105 - a widget key, not a password

log = logging.getLogger("pacsbridge.dashboard")
Args = ParamSpec("Args")


@dataclass(frozen=True)
class SignedIn:
    """What the session remembers about its user between runs."""

    username: str
    role: UserRole
    last_activity: float  # time.time() of the last run the user caused


def session_timeout_minutes() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        minutes = float(raw) if raw else DEFAULT_TIMEOUT_MINUTES
    except ValueError:
        minutes = 0
    if minutes <= 0:
        log.warning(
            "%s=%r is not a positive number of minutes; using %g",
            TIMEOUT_ENV,
            raw,
            DEFAULT_TIMEOUT_MINUTES,
        )
        return DEFAULT_TIMEOUT_MINUTES
    return minutes


def signed_in_user() -> User:
    """The signed-in user, with a sign-out button in the sidebar; otherwise the sign-in form.

    Called once per run by the app shell, before any page; it stops the run when nobody is
    signed in. Pages use `current_user()`.
    """
    user = current_user()
    st.sidebar.caption(f"Signed in as **{user.username}** ({user.role.value})")
    st.sidebar.button("Sign out", on_click=_sign_out, args=("You signed out.",))
    return user


def current_user() -> User:
    """The signed-in user, whose activity renews the session; otherwise the sign-in form.

    Every page calls it, not only the shell: a second guard, should a page file ever run on its
    own (Streamlit does that for files in a folder named pages/, which is why ours is views/).
    """
    user = _session_user()
    if user is None:
        _sign_in_form()
        st.stop()
    st.session_state[SESSION_KEY] = SignedIn(user.username, user.role, time.time())
    return user


def require_admin(user: User, action: str) -> None:
    """Stop the page here for a viewer, saying what only admins can do."""
    if not user.is_admin:
        st.info(f"Only admins can {action}. You are signed in as a viewer.")
        st.stop()


def admin_action(
    action: Callable[Concatenate[User, Args], None],
) -> Callable[Args, None]:
    """An `on_click`/`on_change` callback that changes state, run only for a signed-in admin.

    Streamlit runs callbacks before the page's script, so the page's `current_user()` and
    `require_admin()` come too late to stop them: an expired session, a removed account, a
    demoted admin, or a signed-out tab replaying a stale widget's message would still act.
    The wrapper checks the session and reads the account's role from the store first, then
    calls `action(user, *args)`; otherwise it does nothing and the page explains on its run.
    """

    @functools.wraps(action)
    def checked(*args: Args.args, **kwargs: Args.kwargs) -> None:
        user = _session_user()
        if user is None:
            log.warning("refused %s: nobody is signed in in this session", action.__name__)
            return
        if not user.is_admin:
            log.warning("refused %s: %s is not an admin", action.__name__, user.username)
            return
        action(user, *args, **kwargs)

    return checked


def _session_user() -> User | None:
    session: SignedIn | None = st.session_state.get(SESSION_KEY)
    if session is None:
        return None
    minutes = session_timeout_minutes()
    if time.time() - session.last_activity > minutes * 60:
        _sign_out(f"You were signed out after {minutes:g} minutes without activity. Sign in again.")
        return None
    user = get_user(session.username)
    if user is None:
        _sign_out("Your account no longer exists. Ask an admin for one.")
    return user


def _sign_out(notice: str) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(_VIEWED_KEY, None)  # the next user's views are theirs to record
    st.session_state[_NOTICE_KEY] = notice


def _check_sign_in() -> None:
    # Runs as the form's callback, before the script: the password widget can still be
    # emptied here, so the typed password does not outlive this request.
    username = st.session_state.get(_USERNAME_KEY, "")
    password = st.session_state.get(_PASSWORD_KEY, "")
    st.session_state[_PASSWORD_KEY] = ""
    try:
        user = sign_in(username, password, client_address())
    except PacsbridgeError as exc:
        st.session_state[_FAILED_KEY] = exc
        return
    st.session_state[SESSION_KEY] = SignedIn(user.username, user.role, time.time())


def audit(
    user: User,
    action: AuditAction,
    *,
    integration: str | None = None,
    object_id: str | None = None,
) -> None:
    """Record in the audit trail what `user` did, from this browser's address."""
    record(
        action,
        user.username,
        integration=integration,
        object_id=object_id,
        client_address=client_address(),
    )


def audit_view(user: User, action: AuditAction, integration: str, object_id: str) -> None:
    """Record a view once per session: a page redrawn by a slider is not another view."""
    seen: set[tuple[str, str, str]] = st.session_state.setdefault(_VIEWED_KEY, set())
    if (action, integration, object_id) not in seen:
        seen.add((action, integration, object_id))
        audit(user, action, integration=integration, object_id=object_id)


def client_address() -> str | None:
    """The browser's address as the server sees it (a reverse proxy's, behind one); None
    where there is no browser connection (a test harness gives a stand-in object)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def _sign_in_form() -> None:
    st.title("pacsbridge")
    notice = st.session_state.pop(_NOTICE_KEY, None)
    if notice:
        st.info(notice)
    if not has_users():
        st.warning(
            "No users yet. On the server, create the first admin (the password is asked for, "
            "or read from $PACSBRIDGE_SECRET):"
        )
        st.code("pacsbridge users add NAME --role admin", language="bash")
    with st.form("sign_in"):
        st.text_input("User name", key=_USERNAME_KEY, autocomplete="username")
        st.text_input(
            "Password", key=_PASSWORD_KEY, type="password", autocomplete="current-password"
        )
        st.form_submit_button("Sign in", type="primary", on_click=_check_sign_in)
    failure = st.session_state.pop(_FAILED_KEY, None)
    if isinstance(failure, SignInRefused):
        st.error("Wrong user name or password.")
    elif failure is not None:  # backing off after failures, or too many checks at once
        show_error(failure)
