"""Sign-in throttling: back-off per user name and per client address, bounded password hashing,
and every failure logged and audited without the password."""

from __future__ import annotations

import logging
import threading

import pytest

import core.sign_in
from core import users
from core.audit import AuditAction, audit_trail
from core.sign_in import (
    FIRST_WAIT_S,
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_USER,
    MAX_WAIT_S,
    SignInRefused,
    SignInThrottle,
    SignInThrottled,
    sign_in,
)
from core.users import MAX_CONCURRENT_HASHES, PasswordCheckBusy, add_user

PASSWORD = "correct horse battery staple"
WRONG = "a wrong guess at it"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(core.sign_in, "THROTTLE", SignInThrottle(clock))
    return clock


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Cheap scrypt, and a count of the runs: a refused attempt must cost none."""
    monkeypatch.setattr(users, "COST", users.ScryptCost(n=2**10))
    users._dummy_hash.cache_clear()
    runs: list[int] = []
    real = users.hashlib.scrypt

    def counted(*args: object, **kwargs: object) -> bytes:
        runs.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(users.hashlib, "scrypt", counted)
    return runs


@pytest.fixture
def ada(hashes) -> None:
    add_user("ada", PASSWORD, "admin")


def fail(name: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(SignInRefused):
            sign_in(name, WRONG, address)


def test_a_user_name_waits_after_a_few_failures_and_the_wait_doubles(clock, ada, hashes):
    # From a different address each time: the name alone is throttled.
    for n in range(FREE_FAILURES_PER_USER):
        fail("ada", f"10.0.0.{n}")
    hashes.clear()

    with pytest.raises(SignInThrottled) as caught:
        sign_in("ada", PASSWORD, "10.0.1.1")  # even the right password
    assert caught.value.wait_s == FIRST_WAIT_S
    assert caught.value.hint == f"Try again in {FIRST_WAIT_S:.0f} s."
    assert hashes == []  # refused without hashing

    clock.now += FIRST_WAIT_S
    fail("ada", "10.0.1.1")
    with pytest.raises(SignInThrottled) as caught:
        sign_in("ada", PASSWORD, "10.0.1.1")
    assert caught.value.wait_s == 2 * FIRST_WAIT_S

    clock.now += 2 * FIRST_WAIT_S
    assert sign_in("ada", PASSWORD, "10.0.1.1").username == "ada"
    fail("ada", "10.0.1.1")  # a success starts the count again
    assert sign_in("ada", PASSWORD, "10.0.1.1").username == "ada"


def test_the_wait_is_capped(clock, ada):
    throttle = core.sign_in.THROTTLE
    for _ in range(FREE_FAILURES_PER_USER + 20):
        throttle.failed("ada", None)

    assert throttle.wait_s("ada", None) == MAX_WAIT_S


def test_an_address_waits_after_failures_across_many_names(clock, ada):
    for n in range(FREE_FAILURES_PER_ADDRESS):
        fail(f"guess{n}", "203.0.113.9")

    with pytest.raises(SignInThrottled):
        sign_in("ada", PASSWORD, "203.0.113.9")
    assert sign_in("ada", PASSWORD, "198.51.100.1").username == "ada"  # another address


def test_unknown_and_known_names_are_throttled_alike(clock, ada):
    fail("ada", "10.0.0.1", FREE_FAILURES_PER_USER)
    fail("nobody", "10.0.0.2", FREE_FAILURES_PER_USER)

    waits = []
    for name in ("ada", "nobody"):
        with pytest.raises(SignInThrottled) as caught:
            sign_in(name, WRONG, "10.0.0.3")
        waits.append(caught.value.wait_s)
    assert waits[0] == waits[1]


def test_each_failure_is_logged_and_audited_without_the_password(clock, ada, caplog):
    caplog.set_level(logging.WARNING, logger="pacsbridge.sign_in")

    fail("ada", "10.0.0.7")
    fail(PASSWORD, "10.0.0.7")  # a password typed into the name field
    sign_in("ada", PASSWORD, "10.0.0.7")

    assert [r.getMessage() for r in caplog.records] == [
        "sign-in failed: user ada from 10.0.0.7",
        "sign-in failed: an unknown user name from 10.0.0.7",
    ]
    trail = audit_trail()
    assert [(e.action, e.username, e.client_address) for e in reversed(trail)] == [
        (AuditAction.SIGN_IN_FAILED, "ada", "10.0.0.7"),
        (AuditAction.SIGN_IN_FAILED, None, "10.0.0.7"),
        (AuditAction.SIGN_IN, "ada", "10.0.0.7"),
    ]
    assert PASSWORD not in caplog.text
    assert WRONG not in caplog.text
    assert PASSWORD not in repr([e.model_dump() for e in trail])


def test_password_hashing_runs_a_few_at_a_time(monkeypatch, ada):
    """Many sign-ins at once: never more than MAX_CONCURRENT_HASHES scrypt runs together."""
    gate, changed, release = users._hashing, threading.Condition(), threading.Event()
    arrived, inside, most = [0], [0], [0]
    real = users.hashlib.scrypt

    class CountedGate:
        """The real gate, counting who has come to it."""

        def acquire(self, timeout: float) -> bool:
            with changed:
                arrived[0] += 1
                changed.notify_all()
            return gate.acquire(timeout=timeout)

        def release(self) -> None:
            gate.release()

    def held(*args: object, **kwargs: object) -> bytes:
        with changed:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            changed.notify_all()
        release.wait(timeout=30)
        with changed:
            inside[0] -= 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(users, "_hashing", CountedGate())
    monkeypatch.setattr(users.hashlib, "scrypt", held)
    threads = [
        threading.Thread(target=users.verify_login, args=("ada", PASSWORD)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    try:
        with changed:
            everyone_waits = changed.wait_for(
                lambda: arrived[0] == len(threads) and inside[0] >= MAX_CONCURRENT_HASHES,
                timeout=30,
            )
        assert everyone_waits, f"{arrived[0]} of 6 sign-ins came to the gate, {inside[0]} in"
        assert not gate.acquire(blocking=False)  # full: the other four wait for a slot
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)

    assert most[0] == MAX_CONCURRENT_HASHES


def test_a_password_check_that_cannot_get_a_slot_is_refused_with_a_hint(monkeypatch, ada):
    monkeypatch.setattr(users, "HASH_WAIT_S", 0)
    taken = [users._hashing.acquire() for _ in range(MAX_CONCURRENT_HASHES)]
    try:
        with pytest.raises(PasswordCheckBusy) as caught:
            users.verify_login("ada", PASSWORD)
    finally:
        for _ in taken:
            users._hashing.release()
    assert caught.value.hint == "Try again in a minute."
