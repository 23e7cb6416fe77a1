"""`pacsbridge worker` in the foreground: logging, signals, and a clean exit.

SIGTERM (systemd, Docker, Kubernetes) and SIGINT (Ctrl-C) both stop gracefully: running syncs
finish their in-flight items and end as "interrupted", claimed requests go back to the queue,
and the process exits 0. A second signal stops at once, for an operator who cannot wait; what
it leaves behind is what a crash leaves, which the next run cleans up.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from types import FrameType

from worker import defaults
from worker.scheduler import Worker

log = logging.getLogger("pacsbridge.worker")


class _JsonLines(logging.Formatter):
    """One JSON object per record, for log collectors (`pacsbridge --json worker`)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(*, json_lines: bool = False) -> None:
    """Timestamped lines on stderr, where service managers collect them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # APScheduler reports every job start and end at INFO: every few seconds for the request
    # job. Its warnings (a missed or skipped run) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def main(
    *,
    claim_interval_s: float = defaults.CLAIM_INTERVAL_S,
    health_minutes: float = defaults.HEALTH_MINUTES,
    slots: int = defaults.SLOTS,
    json_lines: bool = False,
) -> int:
    """Run the worker until SIGTERM or SIGINT; the exit status is 0 after a graceful stop.

    Raises what made the worker stop on its own (a store upgraded by a newer pacsbridge)."""
    configure_logging(json_lines=json_lines)
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: stopping after the in-flight items (a second signal stops at once)",
            signal.Signals(signum).name,
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    worker = Worker(
        claim_interval_s=claim_interval_s,
        health_minutes=health_minutes,
        slots=slots,
        on_failure=lambda _failure: stop_requested.set(),
    )
    worker.start()
    try:
        stop_requested.wait()
    finally:
        worker.stop()
    if worker.failure is not None:
        raise worker.failure  # shown with its hint; the exit status is 1
    return 0
