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
from collections.abc import Callable
from pathlib import Path

import requests

from core.errors import InvalidInput, PacsbridgeError
from core.home import first_admin_password_file, write_private_file
from core.store import UserRole
from core.users import FIRST_ADMIN, add_user, has_users

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8501
READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2
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


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--port and --address, shared with `pacsbridge demo`."""
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"address to listen on (default {DEFAULT_ADDRESS}: this machine only)",
    )


def _dashboard(args: argparse.Namespace) -> int:
    check_port_free(args.address, args.port)
    if args.with_worker:
        announce_first_admin(ensure_first_admin())
        return serve(args.address, args.port)
    command = streamlit_command(args.address, args.port)
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606 - our own interpreter running Streamlit


def app_path() -> Path:
    """dashboard/app.py, found without importing the package (that would import Streamlit)."""
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("the dashboard package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(address: str, port: int) -> list[str]:
    """`streamlit run` with the options that matter whatever the working directory: the
    repository's .streamlit/config.toml is only read when started from there."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        f"--server.address={address}",
        f"--server.port={port}",
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


def start_dashboard(address: str, port: int) -> subprocess.Popen[bytes]:
    """Streamlit as a child in its own session: Ctrl-C reaches only us, and we stop it by PID."""
    return subprocess.Popen(
        streamlit_command(address, port), stdin=subprocess.DEVNULL, start_new_session=True
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
            response = requests.get(f"{url}/_stcore/health", timeout=2)
        except requests.ConnectionError as exc:
            last = f"connection failed: {exc}"
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
    address: str,
    port: int,
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
    dashboard = start_dashboard(address, port)
    try:
        url = f"http://{address}:{port}"
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
