"""A local HTTP proxy in front of a real PACS that holds chosen requests until the test says so.

Tests that stop a sync at a given point (SIGKILL while walking, after the first instance, in
the middle of a frame) must not depend on how fast the client is: a fast client finishes
before the kill lands. The proxy forwards every request to the upstream server unchanged,
except that requests whose path matches the held pattern wait, after the first `let_through`
of them, until `release()`, and requests whose path matches the stalled pattern send their
status, headers and the first half of their body and then wait. What the client has when the
test looks is then fixed by the proxy, not by timing.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
POLL_INTERVAL_S = 0.02  # how soon serve_forever notices shutdown(); not a sleep in any test
UPSTREAM_TIMEOUT_S = 60.0
CHUNK = 64 * 1024
# Headers that describe one hop, not the message (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    }
)


@dataclass
class Hold:
    """Which requests wait: paths containing `hold_part`, after `let_through` have passed.

    A path containing `stall_part` is answered half-way and then waits instead.
    """

    hold_part: str | None = None
    let_through: int = 0
    stall_part: str | None = None


class HoldingProxy:
    """Forwards to `upstream`; holds requests per `hold` until `release()`."""

    def __init__(self, upstream: str, hold: Hold) -> None:
        self.upstream = urlsplit(upstream)
        self.hold = hold
        self.released = threading.Event()
        self._passed = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL_S,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def release(self) -> None:
        """Let every held request (and every later one) go on."""
        self.released.set()

    def _treatment(self, path: str) -> str:
        """ "pass", "hold" (wait before forwarding) or "stall" (wait half-way through the body)."""
        if self.hold.stall_part is not None and self.hold.stall_part in path:
            return "stall"
        if self.hold.hold_part is None or self.hold.hold_part not in path:
            return "pass"
        with self._lock:
            if self._passed < self.hold.let_through:
                self._passed += 1
                return "pass"
            return "hold"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test's output is no place for an access log

            def do_GET(self) -> None:
                treatment = proxy._treatment(self.path)
                if treatment == "hold":
                    proxy.released.wait()
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=UPSTREAM_TIMEOUT_S
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request("GET", self.path, headers=headers)
                    answer = upstream.getresponse()
                    body = answer.read()  # whole: a test PACS's answers are small enough
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if treatment == "stall":
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        proxy.released.wait()
                        body = body[len(body) // 2 :]
                    for start in range(0, len(body), CHUNK):
                        self.wfile.write(body[start : start + CHUNK])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while its request was held: what the test wants

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def holding_proxy(upstream: str, hold: Hold) -> Iterator[HoldingProxy]:
    """A started proxy in front of `upstream` (scheme://host:port), stopped at the end."""
    proxy = HoldingProxy(upstream, hold)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
