"""The wheel, installed as a server deployment or a container installs it, works on its own.

The wheel is built from a copy of the source tree and installed into a fresh virtualenv; the
source tree is not on that environment's path, so every module, page and data file must come
from the wheel. The third-party dependencies are shared from the test environment (a `.pth`
line pointing at its site-packages) instead of being downloaded again: what is under test is
pacsbridge's own packaging, not pip's resolver.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import requests

from pacsbridge.demo import synthetic as factory

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ONLY = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".ruff_cache"
)
DASHBOARD_START_S = 60.0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only the wheel's pacsbridge; returns its bin/ folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=SOURCE_ONLY)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work / "dist"), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    shutil.rmtree(source)
    (wheel,) = (work / "dist").glob("pacsbridge-*.whl")

    environment = work / "env"
    venv.create(environment, with_pip=False)
    bin_dir = environment / "bin"
    site_packages = Path(
        subprocess.check_output(
            [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            text=True,
        ).strip()
    )
    installed = subprocess.run(
        # --python: the console script must start the new environment's interpreter.
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install",
         "--no-deps", "--no-index", "-q", str(wheel)],
        # A PYTHONPATH naming the source tree would show pip its pacsbridge.egg-info as an
        # installed pacsbridge, and pip would skip the wheel.
        capture_output=True, text=True, env=_without_pythonpath(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    # The dependencies, and nothing of pacsbridge: this site-packages' own .pth files (the
    # editable install's among them) are not processed when it is added this way.
    (site_packages / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return bin_dir


def run(installed: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed / "pacsbridge"), *argv],
        capture_output=True, text=True, env=env, cwd=installed, timeout=300,
    )  # fmt: skip


def _without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture
def env(pacsbridge_home: Path) -> dict[str, str]:
    # Without PYTHONPATH: nothing but the wheel may provide pacsbridge's packages.
    return {**_without_pythonpath(), "PACSBRIDGE_HOME": str(pacsbridge_home)}


def test_the_installed_packages_come_from_the_wheel(installed, env):
    where = subprocess.check_output(
        [installed / "python", "-c",
         "import core, worker, dashboard, pacsbridge.cli, pacsbridge.demo\n"
         "for m in (core, worker, dashboard, pacsbridge.cli, pacsbridge.demo):\n"
         "    print(m.__file__)"],
        text=True, cwd=installed, env=env,
    ).split()  # fmt: skip
    environment = installed.parent
    assert all(Path(path).is_relative_to(environment) for path in where), where


def test_help_lists_the_commands(installed, env):
    shown = run(installed, "--help", env=env)

    assert shown.returncode == 0, shown.stderr
    for command in ("integrations", "sync", "worker", "dashboard", "demo"):
        assert command in shown.stdout


def test_sync_pulls_from_the_test_orthanc(installed, env, orthanc, patient_id):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
    )
    added = run(
        installed, "integrations", "add", "clinic", "--base-uri", orthanc.dicomweb_url,
        "--auth", "basic", "--username", orthanc.username,
        env={**env, "PACSBRIDGE_SECRET": orthanc.password},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    synced = run(installed, "sync", "clinic", "--patient-id", patient_id, "--json", env=env)

    assert synced.returncode == 0, synced.stderr
    outcome = json.loads(synced.stdout)
    assert (outcome["ok"], outcome["studies"], outcome["instances"]) == (True, 1, 2)


def test_the_dashboard_serves_and_its_sign_in_page_renders(installed, env):
    # The app as installed, rendered by Streamlit's AppTest inside the installed environment:
    # the sign-in form, and after signing in the pages (which live in dashboard/views/).
    probe = """
import pathlib, time
import dashboard
from streamlit.testing.v1 import AppTest
from core import users
from dashboard.auth import SESSION_KEY, SignedIn
app = str(pathlib.Path(dashboard.__file__).parent / "app.py")
at = AppTest.from_file(app, default_timeout=60).run()
assert not at.exception, at.exception
print([button.label for button in at.button])
users.add_user("ada", "correct horse battery staple", "admin")
at.session_state[SESSION_KEY] = SignedIn("ada", "admin", time.time())
at.run()
assert not at.exception, at.exception
print(at.title[0].value if at.title else "")
"""
    rendered = subprocess.run(
        [installed / "python", "-c", probe], capture_output=True, text=True, env=env,
        cwd=installed, timeout=120,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    sign_in_buttons, overview_title = rendered.stdout.splitlines()[-2:]
    assert "Sign in" in sign_in_buttons
    assert overview_title == "Overview"

    # And `pacsbridge dashboard` itself starts Streamlit on the installed app.
    port = _free_port()
    server = subprocess.Popen(
        [str(installed / "pacsbridge"), "dashboard", "--port", str(port)],
        env=env, cwd=installed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert _answers(f"http://127.0.0.1:{port}/_stcore/health", server), _output(server)
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        assert "<title>Streamlit</title>" in page.text or "streamlit" in page.text.lower()
    finally:
        server.terminate()
        server.wait(timeout=20)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + DASHBOARD_START_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(url, timeout=2).ok:
                return True
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or listening before it serves
        time.sleep(0.2)
    return False


def _output(server: subprocess.Popen[bytes]) -> str:
    server.terminate()
    out, _ = server.communicate(timeout=20)
    return out.decode(errors="replace")
