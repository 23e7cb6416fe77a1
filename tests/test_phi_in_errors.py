"""No patient identifier in any error text that leaves the client.

A patient-scoped request is sent into each way a request can fail — a TLS alert, a refused
connection, a server that quotes the request in its error — and the patient ID is looked for
in the CLI's output, the log and the run records.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from core import store
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import SyncError, SyncRun
from pacsbridge.cli import main
from tests.support.tls_server import closed_port

NAME = "clinic"
PATIENT = "PB-PHI-7731"
# A TLS handshake_failure alert (RFC 8446 §6): what a server that refuses our TLS sends.
TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"


@contextmanager
def tls_alert_server() -> Iterator[str]:
    """Answers every connection's ClientHello with a handshake_failure alert."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(4096)
                connection.sendall(TLS_ALERT)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/dicom-web/"
    finally:
        stop.set()
        thread.join()
        listener.close()


def quoting_server(status: int, content_type: str) -> ThreadingHTTPServer:
    """Fails every request with `status`, quoting the request's path and query (as many do)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if content_type == "application/json":
                body = json.dumps({"Details": f"cannot serve {self.path}", "Uri": self.path})
            else:
                body = f"Error: no patient {PATIENT} at {self.path}"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def quoting(status: int, content_type: str) -> Iterator[str]:
    server = quoting_server(status, content_type)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def refused() -> Iterator[str]:
    with closed_port() as port:
        yield f"http://127.0.0.1:{port}/dicom-web/"


PATHS = {
    "tls-alert": tls_alert_server,
    "refused": refused,
    "500-json": lambda: quoting(500, "application/json"),
    "400-text": lambda: quoting(400, "text/plain"),
    "404-json": lambda: quoting(404, "application/json"),
}


@pytest.mark.parametrize("failure", PATHS)
def test_no_error_text_carries_the_patient_id(failure, capsys, caplog):
    caplog.set_level(logging.INFO)
    with PATHS[failure]() as base_uri:
        add_integration(IntegrationSettings(name=NAME, base_uri=base_uri), None)
        assert main(["test", NAME, "--patient-id", PATIENT, "--json"]) == 1
        tested = capsys.readouterr()
        assert main(["sync", NAME, "--patient-id", PATIENT, "--json"]) == 1
        synced = capsys.readouterr()
    # The failure was reported, and ...
    assert json.loads(tested.out)["error"]
    assert json.loads(synced.out)["errors"]
    with store.session() as db:
        runs = db.exec(select(SyncRun)).all()
        errors = db.exec(select(SyncError)).all()
    records = [run.message for run in runs] + [
        json.dumps(error.model_dump(), default=str) for error in errors
    ]
    assert errors
    for text in [tested.out, tested.err, synced.out, synced.err, caplog.text, *records]:
        assert PATIENT not in text  # ... says nothing about whom it was for
