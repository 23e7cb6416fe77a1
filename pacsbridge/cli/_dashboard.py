"""`pacsbridge dashboard`: the Streamlit app, alone or with the worker beside it.

Alone, the command becomes `streamlit run` (exec: the service manager sees Streamlit itself).
With `--with-worker` it is what `scripts/run` starts when a real PACS is configured: the worker
in this process and the dashboard as a child, stopped together on Ctrl-C or SIGTERM. The
demo (`pacsbridge demo`) runs the same pair through `serve`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from core.errors import InvalidInput, PacsbridgeError
from core.home import first_admin_password_file, write_private_file
from core.settings.validation import is_loopback_host
from core.store import UserRole
from core.users import FIRST_ADMIN, add_user, has_users

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8501
READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2
ASK_TIMEOUT_S = 2.0  # one readiness request; the next poll asks again
STOP_TIMEOUT_S = 10.0
# How often the foreground loop looks at its children and runs `on_tick`.
TICK_S = 1.0


class DashboardError(PacsbridgeError):
    """The dashboard did not start."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add `dashboard` to the `pacsbridge` commands."""
    dashboard = commands.add_parser("dashboard")
    add_server_arguments(dashboard)
    dashboard.add_argument(
        "--with-worker",
        action="store_true",
        help="also run the worker (scheduled and requested syncs) until Ctrl-C",
    )
    dashboard.set_defaults(handler=_dashboard)


@dataclass(frozen=True)
class Listener:
    """Where the dashboard listens, and the certificate it serves there if it speaks TLS."""

    address: str
    port: int
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{'https' if self.cert_file else 'http'}://{host}:{self.port}"


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Where to listen and how it is protected, shared with `pacsbridge demo`."""
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"address to listen on (default {DEFAULT_ADDRESS}: this machine only); another "
        "address needs --ssl-cert-file and --ssl-key-file, or --behind-proxy",
    )
    parser.add_argument(
        "--ssl-cert-file",
        type=Path,
        metavar="PEM",
        help="serve HTTPS with this certificate (chain) (Streamlit's server.sslCertFile)",
    )
    parser.add_argument(
        "--ssl-key-file",
        type=Path,
        metavar="PEM",
        help="the certificate's private key (Streamlit's server.sslKeyFile)",
    )
    parser.add_argument(
        "--behind-proxy",
        action="store_true",
        help="a TLS reverse proxy in front terminates HTTPS; only it may reach this address",
    )


def listener_from(args: argparse.Namespace) -> Listener:
    """The listener the options ask for, refused when it would serve passwords and patient data
    in plain HTTP to the network; a listener open to other machines is announced once."""
    cert, key = args.ssl_cert_file, args.ssl_key_file
    if (cert is None) != (key is None):
        raise InvalidInput(
            "--ssl-cert-file and --ssl-key-file go together",
            hint="Give both: the certificate (chain) and its private key, as PEM files.",
        )
    for option, path in (("--ssl-cert-file", cert), ("--ssl-key-file", key)):
        if path is not None and not path.is_file():
            raise InvalidInput(f"{option} {path}: no such file", hint="Give the PEM file's path.")
    listener = Listener(args.address, args.port, cert, key)
    if is_loopback_host(args.address):
        return listener
    if cert is None and not args.behind_proxy:
        raise InvalidInput(
            f"refusing to serve the dashboard on {args.address} over plain HTTP: sign-in "
            "passwords and patient data would cross the network readable by anyone on it",
            hint="Serve HTTPS with --ssl-cert-file and --ssl-key-file, or put a TLS reverse "
            "proxy in front and add --behind-proxy (then let only the proxy reach this port), "
            f"or keep the default --address {DEFAULT_ADDRESS}.",
        )
    if cert is not None:
        print(
            f"warning: the dashboard is reachable from other machines at {listener.url} "
            f"(HTTPS with {cert}).",
            file=sys.stderr,
        )
    else:
        print(
            f"warning: the dashboard speaks plain HTTP on {args.address}:{args.port} "
            "(--behind-proxy): let only the TLS reverse proxy reach it, e.g. with a firewall.",
            file=sys.stderr,
        )
    return listener


def _dashboard(args: argparse.Namespace) -> int:
    listener = listener_from(args)
    check_port_free(listener.address, listener.port)
    if args.with_worker:
        announce_first_admin(ensure_first_admin())
        return serve(listener)
    command = streamlit_command(listener)
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606 - our own interpreter running Streamlit


def app_path() -> Path:
    """dashboard/app.py, found without importing the package (that would import Streamlit)."""
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("the dashboard package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(listener: Listener) -> list[str]:
    """`streamlit run` with the options that matter whatever the working directory: the
    repository's .streamlit/config.toml is only read when started from there."""
    tls = (
        [f"--server.sslCertFile={listener.cert_file}", f"--server.sslKeyFile={listener.key_file}"]
        if listener.cert_file
        else []
    )
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        f"--server.address={listener.address}",
        f"--server.port={listener.port}",
        *tls,
        # Streamlit's defaults today, stated so that neither a config file nor a new version
        # can turn off the checks that stop another site from driving a signed-in session.
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        # Tracebacks can carry settings and URLs; support staff get the message only.
        "--client.showErrorDetails=false",
        # The rest of .streamlit/config.toml, which an installed pacsbridge does not have.
        "--client.toolbarMode=minimal",
        "--theme.base=light",
    ]


def check_port_free(address: str, port: int) -> None:
    """Fail early, with the fix, when something else (often an earlier demo) has the port;
    otherwise the health check below could be answered by that other server."""
    if not 0 < port < 65536:
        raise InvalidInput(f"--port {port} is not a TCP port", hint="Use 1024-65535.")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise DashboardError(
                f"cannot listen on {address}:{port}: {exc.strerror}",
                hint="Stop what uses the port (an earlier `pacsbridge demo`?) or pass --port.",
            ) from None


def ensure_first_admin() -> Path | None:
    """Create the account `admin` with a random password when there is no account at all;
    leave the password in a file only this user can read and return its path (None when
    accounts exist). The store keeps only a hash."""
    if has_users():
        return None
    password = secrets.token_urlsafe(18)
    add_user(FIRST_ADMIN, password, UserRole.ADMIN)
    path = first_admin_password_file()
    write_private_file(path, password + "\n")
    return path


def announce_first_admin(password_file: Path | None) -> None:
    if password_file is None:
        return
    print(f"First dashboard account created: user {FIRST_ADMIN}.")
    print(f"  Its password is in {password_file} (readable by this user only).")
    print(
        f"  After signing in, set your own with `pacsbridge users password {FIRST_ADMIN}`;"
        " that also deletes the file.",
        flush=True,
    )


def start_dashboard(listener: Listener) -> subprocess.Popen[bytes]:
    """Streamlit as a child in its own session: Ctrl-C reaches only us, and we stop it by PID."""
    return subprocess.Popen(
        streamlit_command(listener), stdin=subprocess.DEVNULL, start_new_session=True
    )


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, stop: threading.Event | None = None
) -> bool:
    """Poll Streamlit's health endpoint until it answers (True), ``stop`` is set (False), the
    child exits or time runs out (both DashboardError)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            return False
        if process.poll() is not None:
            raise DashboardError(f"the dashboard exited with status {process.returncode}")
        try:
            with warnings.catch_warnings():
                # Our own child's health, asked by address: its certificate names a host, not
                # this address, and the request carries nothing worth protecting.
                warnings.simplefilter("ignore")
                response = requests.get(
                    f"{url}/_stcore/health",
                    timeout=ASK_TIMEOUT_S,
                    verify=False,  # noqa: S501
                    # A kept-alive idle connection would hold up the dashboard's shutdown.
                    headers={"Connection": "close"},
                )
        except requests.ConnectionError as exc:
            last = f"connection failed: {exc}"
        except requests.Timeout:
            # Listening before it serves: the kernel accepted, nobody answered yet.
            last = f"no answer within {ASK_TIMEOUT_S:.0f} s"
        else:
            if response.ok:
                return True
            last = f"HTTP {response.status_code}"
        time.sleep(POLL_INTERVAL_S)
    raise DashboardError(f"the dashboard did not answer within {READY_TIMEOUT_S:.0f} s ({last})")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM this child (by PID, nothing else), SIGKILL if it lingers. Idempotent."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(
    listener: Listener,
    *,
    on_ready: Callable[[], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> int:
    """Run the worker here and the dashboard as a child until Ctrl-C, SIGTERM or the dashboard
    exiting; stop both. ``on_ready`` runs once the dashboard answers, ``on_tick`` every second."""
    # The worker pulls in APScheduler; only commands that run it import it.
    from worker.scheduler import Worker

    # The worker's one-line run summaries are what shows the first sync happening.
    logging.getLogger("pacsbridge.worker").setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = Worker()
    worker.start()
    dashboard = start_dashboard(listener)
    try:
        url = listener.url
        if wait_until_ready(dashboard, url, stop):
            print(f"Dashboard: {url}  (PID {dashboard.pid}; Ctrl-C stops everything)", flush=True)
            if on_ready:
                on_ready()
        while not stop.wait(TICK_S):
            if dashboard.poll() is not None:
                raise DashboardError(f"the dashboard exited with status {dashboard.returncode}")
            if on_tick:
                on_tick()
        print("Stopping…", flush=True)
        return 0
    finally:
        stop_process(dashboard)
        worker.stop()
