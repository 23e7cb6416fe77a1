"""Secrets at rest: Fernet-encrypted with a key file that only the service account can read.

The key lives in `$PACSBRIDGE_KEY_FILE` (default `$PACSBRIDGE_HOME/secret.key`), apart from the
database, so a copied database (a backup, a support bundle) reveals no clinic's password. Every
worker and dashboard of a fleet must hold the same key: a file or a secret mount they share.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import SecretStoreError
from core.home import pacsbridge_home

KEY_FILE_NAME = "secret.key"
KEY_FILE_ENV = "PACSBRIDGE_KEY_FILE"


def configured_key_file() -> Path:
    """Where the key is: `$PACSBRIDGE_KEY_FILE`, else secret.key in the state folder."""
    configured = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(configured).expanduser() if configured else pacsbridge_home() / KEY_FILE_NAME


class SecretBox:
    """Encrypts and decrypts secrets with the installation's key, creating it on first use."""

    def __init__(self, key_file: Path | None = None) -> None:
        self.key_file = key_file or configured_key_file()
        self._fernet: Fernet | None = None

    def encrypt(self, plaintext: str) -> str:
        return self._cipher().encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._cipher().decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretStoreError(
                f"a stored secret cannot be decrypted with the key in {self.key_file}",
                hint="The key file was replaced or belongs to another installation: restore the "
                "original key, or set the secret again for each integration.",
            ) from None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._load_or_create_key())
        return self._fernet

    def _load_or_create_key(self) -> bytes:
        if self.key_file.exists():
            return self._read_key()
        # Written whole under a private name, then linked into place: a second process starting
        # at the same moment either wins the link or reads the complete key of the first.
        key = Fernet.generate_key()
        draft = self.key_file.with_name(f".{self.key_file.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        try:
            os.link(draft, self.key_file)
        except FileExistsError:
            return self._read_key()
        finally:
            draft.unlink()
        return key

    def _read_key(self) -> bytes:
        if self.key_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretStoreError(
                f"the key file {self.key_file} is readable by other users",
                hint=f"Run `chmod 600 {self.key_file}`.",
            )
        return self.key_file.read_bytes().strip()
