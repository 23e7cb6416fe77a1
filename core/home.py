"""Where pacsbridge keeps its state: `$PACSBRIDGE_HOME` (SQLite database, pulled files, key)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DEFAULT_HOME = "~/.pacsbridge"


def pacsbridge_home() -> Path:
    """The state folder, created on first use (mode 700: it holds the encryption key)."""
    return _created(Path(os.environ.get("PACSBRIDGE_HOME") or DEFAULT_HOME).expanduser())


@cache
def _created(home: Path) -> Path:
    # Once per process and path: this is called for every store session and pulled file.
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home
