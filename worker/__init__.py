"""The `pacsbridge worker` process: runs scheduled and requested pulls through core.sync."""

from pacsbridge.worker._main import main
from pacsbridge.worker._worker import Worker

__all__ = ["Worker", "main"]
