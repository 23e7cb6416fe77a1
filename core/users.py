"""Dashboard accounts: adding, removing and signing in, with passwords kept only as hashes.

Passwords are hashed with scrypt (RFC 7914, in the standard library) at the cost OWASP's
password-storage guidance gives (N=2^17, r=8, p=1) and a random salt per password. The stored
string names the algorithm and its parameters (`scrypt$n=…,r=…,p=…$salt$hash`), so a later
change of cost still verifies every existing password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from functools import cache

from sqlmodel import Session, func, select

from core import store
from core.errors import InvalidInput, PacsbridgeError
from core.store import User, UserRole, utcnow

# The account created when there is none (`pacsbridge dashboard --with-worker`, the demo).
FIRST_ADMIN = "admin"
MIN_PASSWORD_LENGTH = 12
# scrypt reads all of a password; a cap keeps one request from costing the server minutes.
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")


class UserExists(InvalidInput):
    """A user with that name exists already."""

    default_hint = "Choose another name, or change the password with `pacsbridge users password`."


class PasswordCheckBusy(PacsbridgeError):
    """Too many password checks at once: the server refuses rather than run out of memory."""

    default_hint = "Try again in a minute."


class UnknownUser(InvalidInput):
    """No user has that name."""

    default_hint = "See `pacsbridge users list` for the existing users."


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**17
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        # scrypt needs 128·r·N bytes; OpenSSL refuses beyond maxmem, so leave headroom.
        return 2 * 128 * self.r * self.n


COST = ScryptCost()
# Each scrypt run holds 128·r·N bytes (128 MiB at COST): a few at a time, so a burst of
# sign-ins cannot exhaust the host's memory. A run waits this long for its turn.
MAX_CONCURRENT_HASHES = 2
HASH_WAIT_S = 30.0
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
_SALT_BYTES = 16
_KEY_BYTES = 32


def hash_password(password: str, cost: ScryptCost | None = None) -> str:
    """A new salted scrypt hash of `password`, as a self-describing string."""
    cost = cost or COST
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, cost)
    return f"scrypt$n={cost.n},r={cost.r},p={cost.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches `stored`; a malformed hash matches nothing."""
    try:
        algorithm, params, salt, key = stored.split("$")
        values = dict(pair.split("=") for pair in params.split(","))
        cost = ScryptCost(n=int(values["n"]), r=int(values["r"]), p=int(values["p"]))
        expected = base64.b64decode(key + "=" * (-len(key) % 4))
        salt_bytes = base64.b64decode(salt + "=" * (-len(salt) % 4))
    except (ValueError, KeyError):
        return False
    if algorithm != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(password, salt_bytes, cost), expected)


def normalise_username(name: str) -> str:
    """User names are matched without regard to case or surrounding spaces."""
    return name.strip().lower()


def check_username(name: str) -> str:
    normalised = normalise_username(name)
    if not _USERNAME.fullmatch(normalised):
        raise InvalidInput(
            f"{name!r} is not a usable user name",
            hint="Use 1–64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit.",
        )
    return normalised


def check_password(password: str, username: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are needed",
            hint="Use a long passphrase or a password manager's generated password.",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password is longer than {MAX_PASSWORD_LENGTH} characters",
            hint="Use a shorter passphrase.",
        )
    if not password.strip():
        raise InvalidInput("the password is only spaces", hint="Use letters, digits and symbols.")
    if normalise_username(password) == username:
        raise InvalidInput(
            "the password is the user name", hint="Choose a password nobody can guess."
        )
    return password


def check_role(role: str | UserRole) -> UserRole:
    try:
        return UserRole(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}", hint="Use viewer (browse, test) or admin (also change)."
        ) from None


def add_user(name: str, password: str, role: str | UserRole = UserRole.VIEWER) -> User:
    """Create an account; the password is checked, hashed, and then forgotten."""
    username = check_username(name)
    user = User(
        username=username,
        password_hash=hash_password(check_password(password, username)),
        role=check_role(role),
    )
    with store.session() as db:
        if db.exec(select(User).where(User.username == username)).first():
            raise UserExists(f"a user named {username!r} exists already")
        db.add(user)
    return user


def set_password(name: str, password: str) -> User:
    username = normalise_username(name)
    password_hash = hash_password(check_password(password, username))
    with store.session() as db:
        user = _get(db, username)
        user.password_hash = password_hash
        db.add(user)
    return user


def remove_user(name: str) -> None:
    """Delete an account; the last admin stays, or nobody could change settings any more."""
    with store.session() as db:
        user = _get(db, normalise_username(name))
        if user.is_admin and _admin_count(db) == 1:
            raise InvalidInput(
                f"{user.username} is the only admin",
                hint="Add another admin first: pacsbridge users add NAME --role admin",
            )
        db.delete(user)


def get_user(name: str) -> User | None:
    with store.session() as db:
        return db.exec(select(User).where(User.username == normalise_username(name))).first()


def list_users() -> list[User]:
    with store.session() as db:
        return list(db.exec(select(User).order_by(User.username)).all())


def has_users() -> bool:
    with store.session() as db:
        return db.exec(select(func.count()).select_from(User)).one() > 0


def verify_login(name: str, password: str) -> User | None:
    """The user if name and password match, else None — in about the same time either way.

    An unknown name still costs one scrypt run against a dummy hash, so the response time does
    not tell which user names exist.
    """
    user = get_user(name)
    if user is None or len(password) > MAX_PASSWORD_LENGTH:
        verify_password(password[:MAX_PASSWORD_LENGTH], _dummy_hash())
        return None
    if not verify_password(password, user.password_hash):
        return None
    with store.session() as db:
        user.last_login_at = utcnow()
        db.add(user)
    return user


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    if not _hashing.acquire(timeout=HASH_WAIT_S):
        raise PasswordCheckBusy("too many passwords are being checked at once")
    try:
        return hashlib.scrypt(
            password.encode(),
            salt=salt,
            n=cost.n,
            r=cost.r,
            p=cost.p,
            maxmem=cost.maxmem,
            dklen=_KEY_BYTES,
        )
    finally:
        _hashing.release()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _admin_count(db: Session) -> int:
    return db.exec(select(func.count()).select_from(User).where(User.role == UserRole.ADMIN)).one()


def _get(db: Session, username: str) -> User:
    user = db.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise UnknownUser(f"no user named {username!r}")
    return user
