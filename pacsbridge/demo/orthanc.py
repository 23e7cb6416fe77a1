"""A local Orthanc with the DICOMweb plugin: the demo clinic's PACS and the tests' server.

The tests and the demo talk to the same server software a clinic runs, so the client is
exercised against real DICOMweb behaviour rather than a mock's idea of it. The server listens
on 127.0.0.1 only (Orthanc itself cannot be told so; an LD_PRELOAD shim rewrites its bind
calls), uses a random port and a random password, and keeps its data in a given directory.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pydicom
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SHIM_SOURCE = Path(__file__).with_name("bind_loopback.c")

INSTALL_HINT = (
    "Install it with `apt-get install -y orthanc orthanc-dicomweb` (as root; keep the packaged "
    "service from starting), or run scripts/test or scripts/run, which install it."
)
READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.05
ASK_TIMEOUT_S = 2.0  # one readiness request; the next poll asks again
STOP_TIMEOUT_S = 20.0
PORT_ATTEMPTS = 5
PORT_IN_USE_LOG = "already in use"
LOG_FILES = ("orthanc.log", "orthanc.stderr")
TCP_LISTEN = "0A"


class OrthancUnavailable(Exception):
    """Something needed to run Orthanc is not installed; the message says how to fix it."""


class OrthancStartError(RuntimeError):
    """Orthanc was installed but did not come up as a loopback-only server."""


class OrthancRequestError(RuntimeError):
    """Orthanc answered a request with an error status."""


class _PortTaken(Exception):
    """The chosen port was taken between choosing it and Orthanc binding it."""


class OrthancServer:
    """A running Orthanc process started by this program (stopped by its PID only)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        username: str,
        password: str,
        workdir: Path,
    ) -> None:
        self._process = process
        self.port = port
        self.username = username
        self.password = password
        self.workdir = workdir
        self.session = requests.Session()
        self.session.auth = (username, password)
        # POST /instances is idempotent (a repeat answers "AlreadyStored"), so a request that
        # lost its pooled connection to Orthanc's 1 s keep-alive timeout can safely be resent.
        retry = Retry(total=3, allowed_methods=None, backoff_factor=0.05)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web/"

    @classmethod
    def start(cls, workdir: Path) -> OrthancServer:
        """Start Orthanc on a free loopback port with its data in ``workdir``.

        Raises OrthancUnavailable when Orthanc, its DICOMweb plugin or gcc is missing, and
        OrthancStartError when it does not become ready or listens beyond loopback.
        """
        if not ORTHANC_BINARY.is_file() or not os.access(ORTHANC_BINARY, os.X_OK):
            raise OrthancUnavailable(f"Orthanc binary {ORTHANC_BINARY} not found. {INSTALL_HINT}")
        plugin = find_dicomweb_plugin()
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        shim = compile_bind_shim(workdir)
        username = "pacsbridge"
        password = secrets.token_urlsafe(32)
        tried: list[int] = []
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            tried.append(port)
            if _is_listening(port):
                continue
            write_config(workdir, port=port, username=username, password=password, plugin=plugin)
            try:
                return cls._launch(workdir, shim, port, username, password)
            except _PortTaken:
                # Orthanc appends to its log: keep each failed attempt's log apart.
                for name in LOG_FILES:
                    if (workdir / name).exists():
                        (workdir / name).rename(workdir / f"{name}.port-{port}")
        raise OrthancStartError(f"no free port for Orthanc after trying ports {tried}")

    @classmethod
    def _launch(
        cls, workdir: Path, shim: Path, port: int, username: str, password: str
    ) -> OrthancServer:
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        with (workdir / "orthanc.stderr").open("ab") as stderr:
            process = subprocess.Popen(
                [
                    str(ORTHANC_BINARY),
                    f"--logfile={workdir / 'orthanc.log'}",
                    str(workdir / "orthanc.json"),
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        server = cls(process, port, username, password, workdir)
        try:
            server._wait_until_ready()
            server._check_loopback_only()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_ready(self) -> None:
        """Poll GET /system until it answers 200, the process exits or the deadline passes."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log_tail()
                if PORT_IN_USE_LOG in log:
                    raise _PortTaken(self.port)
                raise OrthancStartError(
                    f"Orthanc exited with status {self._process.returncode} before it was "
                    f"ready.\n{log}"
                )
            try:
                # Not self.session: its retries would slow down each poll.
                response = requests.get(
                    f"{self.url}/system", auth=self.session.auth, timeout=ASK_TIMEOUT_S
                )
            except requests.ConnectionError as exc:
                last = f"connection failed: {exc}"
            except requests.Timeout:
                last = f"no answer within {ASK_TIMEOUT_S:.0f} s"  # a loaded machine: ask again
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            time.sleep(POLL_INTERVAL_S)
        raise OrthancStartError(
            f"Orthanc did not answer GET /system within {READY_TIMEOUT_S:.0f} s ({last}).\n"
            f"{self.log_tail()}"
        )

    def _check_loopback_only(self) -> None:
        """Refuse a server that would be reachable from the network."""
        if Path(f"/proc/{self.pid}/comm").read_text().strip() != "Orthanc":
            raise OrthancStartError(f"PID {self.pid} is not Orthanc")
        listeners = listening_addresses(self.pid)
        exposed = [(h, p) for h, p in listeners if not ipaddress.ip_address(h).is_loopback]
        if exposed:
            raise OrthancStartError(
                f"Orthanc listens beyond loopback on {exposed}; the bind shim did not work."
            )
        if ("127.0.0.1", self.port) not in listeners:
            raise OrthancStartError(
                f"Orthanc (PID {self.pid}) does not listen on 127.0.0.1:{self.port}; "
                f"its listeners are {sorted(listeners)}"
            )

    def log_tail(self, lines: int = 40) -> str:
        """The end of Orthanc's log and stderr, for failure messages."""
        parts = []
        for path in (self.workdir / name for name in LOG_FILES):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def upload(self, datasets: Iterable[pydicom.Dataset]) -> list[str]:
        """Store each dataset as a Part-10 file through POST /instances; return Orthanc IDs."""
        ids = []
        for dataset in datasets:
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            response = self.session.post(
                f"{self.url}/instances",
                data=buffer.getvalue(),
                headers={"Content-Type": "application/dicom"},
                timeout=30,
            )
            if response.status_code != 200:
                raise OrthancRequestError(
                    f"uploading {dataset.get('SOPInstanceUID', '?')} failed: "
                    f"HTTP {response.status_code} {error_message(response)}"
                )
            ids.append(response.json()["ID"])
        return ids

    def stop(self) -> None:
        """SIGTERM this Orthanc (by PID, nothing else), then SIGKILL after 20 s. Idempotent."""
        self.session.close()
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def error_message(response: requests.Response) -> str:
    """Orthanc's Message/Details; its error bodies are JSON but carry no Content-Type."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return response.text[:500]
    return " - ".join(str(body[key]) for key in ("Message", "Details") if body.get(key))


def find_dicomweb_plugin() -> Path:
    """The real file behind the Debian plugin symlink (Orthanc wants the one .so)."""
    resolved = Path(os.path.realpath(DICOMWEB_PLUGIN))
    if resolved.is_file():
        return resolved
    try:
        listed = subprocess.run(
            ["dpkg-query", "-L", "orthanc-dicomweb"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    except FileNotFoundError:
        listed = []
    for line in listed:
        candidate = Path(line.strip())
        if candidate.name.startswith("libOrthancDicomWeb.so") and candidate.is_file():
            return Path(os.path.realpath(candidate))
    raise OrthancUnavailable(
        f"Orthanc's DICOMweb plugin {DICOMWEB_PLUGIN} not found (package orthanc-dicomweb). "
        f"{INSTALL_HINT}"
    )


def compile_bind_shim(workdir: Path) -> Path:
    """Build the loopback bind shim into ``workdir``; it needs gcc and the libc headers."""
    gcc = shutil.which("gcc")
    hint = (
        "Install them with `apt-get install -y gcc libc6-dev`, or run scripts/test or scripts/run."
    )
    if gcc is None:
        raise OrthancUnavailable(
            f"gcc not found: it is needed to build the bind shim that keeps the local Orthanc "
            f"on 127.0.0.1. {hint}"
        )
    output = workdir / "bind_loopback.so"
    result = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(output), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OrthancUnavailable(f"building {SHIM_SOURCE.name} failed:\n{result.stderr}\n{hint}")
    return output


def write_config(workdir: Path, *, port: int, username: str, password: str, plugin: Path) -> Path:
    """Write a minimal orthanc.json readable by its owner only (it holds the password)."""
    config = {
        "Name": "pacsbridge-local",
        "HttpServerEnabled": True,
        "HttpPort": port,
        "HttpDescribeErrors": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "DicomServerEnabled": False,
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "Plugins": [str(plugin)],
        "WebDavEnabled": False,
        "ExecuteLuaEnabled": False,
        "SaveJobs": False,
        "ConcurrentJobs": 2,
        "DicomModalities": {},
        "OrthancPeers": {},
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            "Ssl": False,
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
            "Servers": {},
        },
    }
    path = workdir / "orthanc.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by process ``pid``.

    Read from /proc so that no external tool (ss, netstat) is needed.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # the descriptor was closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and inode in inodes:
                found.add(_decode_proc_address(local))
    return found


def _decode_proc_address(field: str) -> tuple[str, int]:
    """Decode /proc/net/tcp{,6} "HEXADDR:HEXPORT": the address is 32-bit words in host order."""
    address_hex, port_hex = field.split(":")
    words = [int(address_hex[i : i + 8], 16) for i in range(0, len(address_hex), 8)]
    packed = struct.pack(f"={len(words)}I", *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def _free_port() -> int:
    """A port the kernel considers free right now (it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _is_listening(port: int) -> bool:
    """Whether something (a stale fixture, another program) already accepts on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
