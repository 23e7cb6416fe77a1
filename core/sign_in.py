"""Signing in: the password check behind a back-off per user name and per client address.

After a few failures in a row, a user name (or a client address) must wait before its next
attempt, and the wait doubles with each further failure up to a cap. A refused attempt costs
no password hash, so guessing is slow and cheap to refuse. Unknown user names are throttled
like known ones, so the throttle does not tell which names exist. Each failure is logged and
recorded in the audit trail with the account's name only when that account exists: a typed
name that matches nothing may be a password typed into the wrong field.

The counts live in this process: several dashboards behind one proxy each keep their own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.audit import AuditAction, record
from core.errors import PacsbridgeError
from core.store import User
from core.users import get_user, normalise_username, verify_login

log = logging.getLogger("pacsbridge.sign_in")

FREE_FAILURES_PER_USER = 3
FREE_FAILURES_PER_ADDRESS = 10  # people behind one clinic NAT share an address
FIRST_WAIT_S = 5.0
MAX_WAIT_S = 300.0
# Beyond this many remembered names and addresses, those idle for longer than MAX_WAIT_S go.
_MAX_REMEMBERED = 10_000


class SignInRefused(PacsbridgeError):
    """Wrong user name or password; which of the two is not said."""

    default_hint = "Check both, or ask an admin to set a new password."


class SignInThrottled(PacsbridgeError):
    """Too many failed sign-ins for this user name or from this address."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        super().__init__(
            "too many failed sign-ins for this user name or from this address",
            hint=f"Try again in {math.ceil(wait_s)} s.",
        )


@dataclass
class _Failures:
    count: int
    last_at: float


class SignInThrottle:
    """Consecutive failures per user name and per client address, and the wait they impose."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], _Failures] = {}

    def wait_s(self, username: str, address: str | None) -> float:
        """Seconds before this user name, from this address, may try again (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [
                self._wait(self._failures.get(key), free, now)
                for key, free in self._keys(username, address)
            ]
        return max(waits)

    def failed(self, username: str, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > _MAX_REMEMBERED:
                self._forget_idle(now)
            for key, _ in self._keys(username, address):
                entry = self._failures.setdefault(key, _Failures(0, now))
                entry.count += 1
                entry.last_at = now

    def succeeded(self, username: str) -> None:
        # Only the name's count: a success must not clear the address's, or one valid account
        # would let its holder guess at every other account from the same address.
        with self._lock:
            self._failures.pop(("user", normalise_username(username)), None)

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[tuple[str, str], int]]:
        keys = [(("user", normalise_username(username)), FREE_FAILURES_PER_USER)]
        if address:
            keys.append((("address", address), FREE_FAILURES_PER_ADDRESS))
        return keys

    @staticmethod
    def _wait(entry: _Failures | None, free: int, now: float) -> float:
        if entry is None or entry.count < free:
            return 0.0
        wait = min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (entry.count - free))
        return max(0.0, entry.last_at + wait - now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._failures.items() if now - e.last_at > MAX_WAIT_S]:
            del self._failures[key]


THROTTLE = SignInThrottle()


def sign_in(username: str, password: str, client_address: str | None) -> User:
    """The user whose name and password these are, or SignInRefused / SignInThrottled."""
    wait = THROTTLE.wait_s(username, client_address)
    if wait > 0:
        log.warning("sign-in refused, backing off %.0f s: %s", wait, _who(username, client_address))
        raise SignInThrottled(wait)
    user = verify_login(username, password) if username and password else None
    if user is None:
        THROTTLE.failed(username, client_address)
        log.warning("sign-in failed: %s", _who(username, client_address))
        record(AuditAction.SIGN_IN_FAILED, _account_name(username), client_address=client_address)
        raise SignInRefused("wrong user name or password")
    THROTTLE.succeeded(username)
    record(AuditAction.SIGN_IN, user.username, client_address=client_address)
    return user


def _account_name(username: str) -> str | None:
    """The name typed, if an account has it; else None (it may be a mistyped password)."""
    account = get_user(username) if username else None
    return account.username if account else None


def _who(username: str, address: str | None) -> str:
    name = _account_name(username)
    return f"{f'user {name}' if name else 'an unknown user name'} from {address or 'an unknown address'}"
