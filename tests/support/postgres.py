"""A throw-away PostgreSQL server for the tests: `initdb` in a temporary folder, listening on
127.0.0.1 at a free port (and a Unix socket in that folder), password authentication on.

PostgreSQL refuses to run as root; when the tests run as root (CI containers), the server runs
as the `postgres` account that the Debian package creates, through `runuser`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_PACKAGES = Path("/usr/lib/postgresql")
USER = "pacsbridge"
DATABASE = "pacsbridge"
# Speed over durability: the cluster is thrown away after the test session.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
}


PORT_ATTEMPTS = 5
PORT_IN_USE_LOG = "Address already in use"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server programs are missing or the server did not start."""


def server_bin() -> Path:
    """The newest installed server's bin/ folder (Debian keeps one per major version)."""
    versions = sorted(
        (p for p in SERVER_PACKAGES.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresUnavailable(
            "the PostgreSQL server is not installed (no initdb under /usr/lib/postgresql); "
            "install it with `apt-get install -y postgresql` (scripts/test does)"
        )
    return versions[-1]


@dataclass
class PostgresServer:
    folder: Path
    port: int
    password: str
    bin: Path
    run_as: list[str]

    @property
    def url(self) -> str:
        """The plain `postgresql://` URL an operator would put in $DATABASE_URL."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, password=self.password,
            dbname=DATABASE, autocommit=True,
        )  # fmt: skip

    @classmethod
    def start(cls, folder: Path) -> PostgresServer:
        binaries = server_bin()
        run_as = _unprivileged(folder)
        password = secrets.token_urlsafe(16)
        data = folder / "data"
        password_file = folder / "password"
        password_file.write_text(password)
        password_file.chmod(0o600)
        _own(folder, run_as)
        _run(run_as, binaries / "initdb", "-D", data, "-U", USER, "--auth=scram-sha-256",
             f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        password_file.unlink()
        server = cls(folder, 0, password, binaries, run_as)
        # A port found free may be taken by another program before the server binds it: then
        # the server stops at once, saying so in its log, and another port is tried.
        for _ in range(PORT_ATTEMPTS):
            server.port = _free_port()
            log_before = server.log_size()
            try:
                server.resume()
                break
            except PostgresUnavailable:
                if PORT_IN_USE_LOG not in server.log(since=log_before):
                    raise
        else:
            raise PostgresUnavailable(f"every port tried was taken:\n{server.log()}")
        with psycopg.connect(
            host="127.0.0.1", port=server.port, user=USER, password=password, dbname="postgres",
            autocommit=True,
        ) as admin:  # fmt: skip
            admin.execute(f"CREATE DATABASE {DATABASE}")
        return server

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"),
             "-m", "fast", "-w", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip

    def resume(self) -> None:
        """Start the server on its port; after `stop`, again with the same data."""
        options = " ".join(
            [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"]
            + [f"-c {name}={value}" for name, value in SETTINGS.items()]
        )
        _run(self.run_as, self.bin / "pg_ctl", "-D", self.folder / "data", "-o", options,
             "-l", self.folder / "server.log", "-w", "-t", "60", "start")  # fmt: skip

    def log(self, since: int = 0) -> str:
        """The server log's last 4,000 characters, of what was written after `since`."""
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[since:][-4000:] if path.exists() else ""

    def log_size(self) -> int:
        path = self.folder / "server.log"
        return len(path.read_text(errors="replace")) if path.exists() else 0


def _unprivileged(folder: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root, and `runuser` is missing to drop to postgres")
    return ["runuser", "-u", "postgres", "--"]


def _own(folder: Path, run_as: list[str]) -> None:
    """Give the server's account the folder (it must be one the account can reach, e.g. a
    fresh folder in /tmp: pytest's own temporary folders are private to their user)."""
    if not run_as:
        return
    shutil.chown(folder, "postgres", "postgres")
    for path in folder.iterdir():
        shutil.chown(path, "postgres", "postgres")


def _run(run_as: list[str], *command: object) -> None:
    result = subprocess.run(
        [*run_as, *map(str, command)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(str(command[0])).name} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
