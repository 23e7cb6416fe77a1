"""Where pacsbridge keeps its state: `$PACSBRIDGE_HOME` (database, pulled files, key)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DEFAULT_HOME = "~/.pacsbridge"
# Where the first dashboard account's generated password is left for the operator: a file only
# its owner can read, never stdout (a service manager keeps stdout in its journal).
FIRST_ADMIN_PASSWORD_FILE = "first-admin-password"  # noqa: S105 - a file name


def pacsbridge_home() -> Path:
    """The state folder, created on first use (mode 700: it holds the encryption key)."""
    return _created(Path(os.environ.get("PACSBRIDGE_HOME") or DEFAULT_HOME).expanduser())


@cache
def _created(home: Path) -> Path:
    # Once per process and path: this is called for every store session and pulled file.
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """`$DATABASE_URL` if set, else the SQLite file in the state folder."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{pacsbridge_home() / 'pacsbridge.db'}"


def first_admin_password_file() -> Path:
    return pacsbridge_home() / FIRST_ADMIN_PASSWORD_FILE


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, whole or not at all.

    The draft is created 0600 (O_EXCL: never a file someone else prepared) and renamed over
    `path`, so an earlier file with looser permissions is replaced, not reused.
    """
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(draft, path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
