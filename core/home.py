"""Where pacsbridge keeps its state: `$PACSBRIDGE_HOME` (SQLite database, pulled files, key)."""

from __future__ import annotations

import os
import stat
from functools import cache
from pathlib import Path

from core.errors import UnsafePermissions

DEFAULT_HOME = "~/.pacsbridge"
# Pulled frames and thumbnails: `$PACSBRIDGE_DATA` (a mount every worker and dashboard of a
# fleet shares), else this folder in the home. core.files names what is inside.
DATA_ENV = "PACSBRIDGE_DATA"
DATA_DIR = "files"
# Everything pacsbridge writes holds patient data or secrets: no other user of the machine
# may read it, whatever umask the shell or the service manager started us with.
PRIVATE_UMASK = 0o077
# Where the first dashboard account's generated password is left for the operator: a file only
# its owner can read, never stdout (a service manager keeps stdout in its journal).
FIRST_ADMIN_PASSWORD_FILE = "first-admin-password"  # noqa: S105 - a file name


def pacsbridge_home() -> Path:
    """The state folder, created on first use, private to this user (see PRIVATE_UMASK).

    Every path pacsbridge writes is found through here, so setting the umask here covers frames,
    thumbnails, the SQLite file and its journals, and the key, in every process.
    """
    os.umask(PRIVATE_UMASK)
    return _created(Path(os.environ.get("PACSBRIDGE_HOME") or DEFAULT_HOME).expanduser())


@cache
def _created(home: Path) -> Path:
    # Once per process and path: this is called for every store session and pulled file.
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (home, home / DATA_DIR):
        refuse_if_shared(folder)
    return home


def data_root() -> Path:
    """Where pulled files live: `$PACSBRIDGE_DATA`, else `files` in the state folder."""
    configured = os.environ.get(DATA_ENV, "").strip()
    if not configured:
        return pacsbridge_home() / DATA_DIR
    os.umask(PRIVATE_UMASK)
    return _checked_data_root(Path(configured).expanduser())


@cache
def _checked_data_root(root: Path) -> Path:
    refuse_if_shared(root)
    return root


def refuse_if_shared(folder: Path) -> None:
    """A folder made before pacsbridge did (by hand, or by an older version) may be open to
    other users; what it holds must not be, so stop and say how to close it."""
    try:
        mode = stat.S_IMODE(folder.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise UnsafePermissions(
            f"{folder} is open to other users of this machine (mode {mode:o}); it holds "
            "patients' images and pacsbridge's secrets",
            hint=f"Run `chmod -R go= {folder}` (it stays usable by you), then start again.",
        )


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
