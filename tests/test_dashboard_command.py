"""`pacsbridge dashboard`: where it listens, and that it never serves the network in plain HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pacsbridge.cli import _dashboard, main
from tests.support.tls_server import Pki, make_pki

READY_DEADLINE_S = 60.0
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the address under test, nothing binds it here


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def execs(monkeypatch) -> list[list[str]]:
    """The Streamlit command lines `pacsbridge dashboard` would replace itself with."""
    started: list[list[str]] = []
    monkeypatch.setattr(_dashboard.os, "execv", lambda _path, argv: started.append(argv))
    return started


def test_by_default_it_listens_on_loopback_with_xsrf_and_cors_checks_on(execs, free_port, capsys):
    main(["dashboard", "--port", str(free_port)])

    [command] = execs
    assert "--server.address=127.0.0.1" in command
    assert "--server.enableXsrfProtection=true" in command
    assert "--server.enableCORS=true" in command
    assert not [option for option in command if "ssl" in option]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("address", [ALL_INTERFACES, "::", "192.0.2.10", "pacsbridge.example"])
def test_another_address_in_plain_http_is_refused_with_the_ways_out(
    execs, free_port, address, capsys
):
    code = main(["dashboard", "--address", address, "--port", str(free_port)])

    assert code == 2
    assert execs == []
    err = capsys.readouterr().err
    assert f"refusing to serve the dashboard on {address} over plain HTTP" in err
    for way_out in ("--ssl-cert-file and --ssl-key-file", "--behind-proxy", "127.0.0.1"):
        assert way_out in err


def test_a_certificate_without_its_key_is_refused(execs, pki, free_port, capsys):
    code = main(
        ["dashboard", "--address", ALL_INTERFACES, "--port", str(free_port),
         "--ssl-cert-file", str(pki.valid.cert)]
    )  # fmt: skip

    assert code == 2
    assert execs == []
    assert "--ssl-cert-file and --ssl-key-file go together" in capsys.readouterr().err


def test_with_tls_another_address_is_served_over_https_and_announced_once(
    execs, pki, free_port, capsys
):
    main(
        ["dashboard", "--address", ALL_INTERFACES, "--port", str(free_port),
         "--ssl-cert-file", str(pki.valid.cert), "--ssl-key-file", str(pki.valid.key)]
    )  # fmt: skip

    [command] = execs
    assert f"--server.sslCertFile={pki.valid.cert}" in command
    assert f"--server.sslKeyFile={pki.valid.key}" in command
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: the dashboard is reachable from other machines at https://")


def test_behind_a_proxy_another_address_is_allowed_with_one_warning(execs, free_port, capsys):
    main(["dashboard", "--address", ALL_INTERFACES, "--port", str(free_port), "--behind-proxy"])

    [command] = execs
    assert f"--server.address={ALL_INTERFACES}" in command
    [warning] = capsys.readouterr().err.splitlines()
    assert "let only the TLS reverse proxy reach it" in warning


@pytest.fixture
def dashboard_over_tls(pki, free_port, pacsbridge_home) -> Iterator[str]:
    """The real command serving HTTPS with the test CA's certificate for 127.0.0.1."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("pacsbridge")), "dashboard",
         "--port", str(free_port),
         "--ssl-cert-file", str(pki.valid.cert), "--ssl-key-file", str(pki.valid.key)],
        env={**os.environ, "PACSBRIDGE_HOME": str(pacsbridge_home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{free_port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_certificate_reaches_streamlit(dashboard_over_tls, pki):
    deadline = time.monotonic() + READY_DEADLINE_S
    last = "no answer"
    while True:
        try:
            health = requests.get(
                f"https://{dashboard_over_tls}/_stcore/health",
                verify=pki.ca_cert,
                timeout=5,
                # An idle kept-alive TLS connection holds up Streamlit's shutdown.
                headers={"Connection": "close"},
            )
            if health.ok:
                break
            last = f"HTTP {health.status_code}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = repr(exc)  # not listening yet, or listening before it serves
        assert time.monotonic() < deadline, f"no healthy answer from the dashboard: {last}"
        time.sleep(0.2)
