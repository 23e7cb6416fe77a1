"""The dashboard in a real headless Chromium, against the running demo.

`pacsbridge demo` is started the way the README tells a newcomer to (with a fresh
PACSBRIDGE_HOME and a free port): demo PACS, worker, dashboard, first sync. The test then does
what a support person does: sign in, see the clinic green, test the connection to a patient,
look at the patient's follicle charts, open a study's images, check the sync runs and the
settings. Every page must render without Streamlit's exception box.

With PACSBRIDGE_SCREENSHOTS naming a folder, each page is also saved there as a PNG
(scripts/screenshots does that for the README).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from pacsbridge.demo.clinic import demo_datasets

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "The browser test needs Debian's chromium and chromium-driver: scripts/test installs them "
    "(or: scripts/install-system-packages chromium chromium-driver)."
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1440, 1100)
SCREENSHOTS_ENV = "PACSBRIDGE_SCREENSHOTS"
# What the window loses to the browser's own frame, even headless.
WINDOW_CHROME = 160
CONTENT_HEIGHT_JS = """
const main = document.querySelector('[data-testid="stMainBlockContainer"]');
return Math.ceil(main ? main.scrollHeight : document.body.scrollHeight);
"""
PATIENT = "FC-1001"
DEMO_START_TIMEOUT_S = 240.0  # seeding the demo PACS on a slow machine, then the first sync
PAGE_TIMEOUT_S = 60.0
POLL_S = 0.25
# A page is drawn when Streamlit's "running" indicator has stayed away this long.
SETTLED_S = 1.0
STOP_TIMEOUT_S = 30.0

T = TypeVar("T")


@dataclass
class DemoProcess:
    """`pacsbridge demo` as a child process, its output collected line by line."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output so far."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.seen:
                if match := compiled.search(line):
                    return match
            if self.process.poll() is not None and self.lines.empty():
                break
            try:
                self.seen.append(self.lines.get(timeout=POLL_S))
            except queue.Empty:
                continue
        pytest.fail(f"`pacsbridge demo` never printed /{pattern}/. Output:\n" + self.output())

    def output(self) -> str:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "\n".join(self.seen)

    def child_pids(self) -> list[int]:
        """The Orthanc and Streamlit PIDs the demo printed (they run in sessions of their own)."""
        return [int(pid) for pid in re.findall(r"PID (\d+)", self.output())]

    def stop(self) -> None:
        """SIGTERM the demo, which stops what it started; if anything outlives it, kill that
        by the PID the demo printed for it."""
        children = self.child_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in children:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue  # stopped by the demo, as it should be
            # Only if the PID still names what the demo started, not a process that reused it.
            if b"Orthanc" in command or b"streamlit" in command:
                os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class RunningDemo:
    url: str
    password: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    home = tmp_path_factory.mktemp("demo-home")
    port = free_port()
    env = {**os.environ, "PACSBRIDGE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("pacsbridge")), "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    running = DemoProcess(process)
    threading.Thread(target=running.read_output, daemon=True).start()
    try:
        password_file = running.wait_for(r"^\s+Its password is in (\S+) ", DEMO_START_TIMEOUT_S)
        password = Path(password_file.group(1)).read_text().strip()
        assert password not in running.output()
        url = running.wait_for(r"^Dashboard: (http://\S+)", DEMO_START_TIMEOUT_S).group(1)
        first_sync = running.wait_for(r"^First sync (done|ended.*)", DEMO_START_TIMEOUT_S)
        assert first_sync.group(1) == "done", running.output()
        yield RunningDemo(url, password)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing. {INSTALL_HINT}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    with tempfile.TemporaryDirectory(prefix="pacsbridge-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        try:
            driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        except WebDriverException as exc:
            pytest.fail(f"Chromium did not start: {exc.msg}. {INSTALL_HINT}", pytrace=False)
        try:
            yield driver
        finally:
            driver.quit()


def poll(what: str, check: Callable[[], T | None], timeout: float = PAGE_TIMEOUT_S) -> T:
    """``check()`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except StaleElementReferenceException:
            pass  # Streamlit redrew the element while we looked: look again
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Dashboard:
    """The few things a person does in the dashboard, and what the test checks on each page."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        folder = os.environ.get(SCREENSHOTS_ENV)
        self.screenshots = Path(folder) if folder else None

    def find(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def settled(self, what: str, expected: str, timeout: float = PAGE_TIMEOUT_S) -> None:
        """Wait until ``expected`` shows and the script has stopped running, then make sure
        Streamlit shows no exception box."""
        quiet_since: list[float] = []

        def done() -> bool:
            if self.find('[data-testid="stException"]'):
                return True  # reported below, with its text
            running = self.find('[data-testid="stStatusWidget"]')
            if running or expected not in self.text():
                quiet_since.clear()
                return False
            quiet_since.append(time.monotonic())
            return quiet_since[-1] - quiet_since[0] >= SETTLED_S

        poll(f"{what} to show {expected!r}", done, timeout)
        self.assert_no_exception(what)

    def assert_no_exception(self, what: str) -> None:
        boxes = self.find('[data-testid="stException"]')
        assert not boxes, f"{what} shows an exception:\n" + "\n".join(b.text for b in boxes)

    def sign_in(self, url: str, password: str) -> None:
        self.driver.get(url)
        # The form's fields may come in messages of their own: wait for both.
        user, secret = poll("the sign-in form", self.sign_in_fields)
        user.send_keys("admin")
        secret.send_keys(password)
        self.button("Sign in").click()
        self.settled("the first page after signing in", "Signed in as admin")

    def sign_in_fields(self) -> tuple[WebElement, WebElement] | None:
        user = self.find('input[aria-label="User name"]')
        secret = self.find('input[aria-label="Password"]')
        return (user[0], secret[0]) if user and secret else None

    def button(self, label: str) -> WebElement:
        return poll(
            f"the button {label!r}",
            lambda: next(
                (b for b in self.find("button") if b.text.strip() == label and b.is_enabled()),
                None,
            ),
        )

    def open_page(self, title: str, expected: str) -> None:
        """Click the page in the sidebar navigation (a reload would start a new session)."""
        link = poll(
            f"the sidebar link {title!r}",
            lambda: next(
                (
                    a
                    for a in self.find('[data-testid="stSidebarNavLink"]')
                    if a.text.endswith(title)
                ),
                None,
            ),
        )
        link.click()
        # Until the server starts the new page's run, the old page stays on screen, quiet, and
        # may hold `expected` too: the new page is known by its title (each view's st.title).
        poll(f"the page {title!r} to open", lambda: title in self.titles())
        self.settled(title, expected)

    def titles(self) -> list[str]:
        return [h.text.strip() for h in self.find('[data-testid="stMain"] h1')]

    def type_into(self, label: str, text: str) -> None:
        """Type into a text input and press Enter, which is when Streamlit takes the value."""
        field = poll(f"the input {label!r}", lambda: self.find(f'input[aria-label="{label}"]'))[0]
        field.clear()
        field.send_keys(text, Keys.ENTER)

    def wait_for_count(self, css: str, count: int, what: str) -> list[WebElement]:
        return poll(what, lambda: (found := self.find(css)) and len(found) >= count and found)

    def content_height(self) -> int:
        height = self.driver.execute_script(CONTENT_HEIGHT_JS)
        assert isinstance(height, int)
        return height

    def screenshot(self, name: str) -> None:
        """The whole page as a PNG: the window is made as tall as the page's content (which
        scrolls inside its own container, so a plain screenshot shows only the top)."""
        if self.screenshots is None:
            return
        self.screenshots.mkdir(parents=True, exist_ok=True)
        # Away from whatever the last click left hovered (toolbars) or focused.
        self.driver.execute_script("document.activeElement && document.activeElement.blur()")
        # The pointer goes above the title: on it, Streamlit would show the title's link icon.
        ActionChains(self.driver).move_to_element_with_offset(self.find("h1")[0], 0, -60).perform()
        width, height = WINDOW
        self.driver.set_window_size(width, max(height, self.content_height() + WINDOW_CHROME))
        heights: list[int] = []
        # Charts redraw for the new size; the height stops changing when they are done.
        poll(
            f"{name} to lay out again",
            lambda: heights.append(self.content_height()) or heights[-3:] == [heights[-1]] * 3,
        )
        assert self.driver.save_screenshot(str(self.screenshots / f"{name}.png"))
        self.driver.set_window_size(width, height)


# The browser first: without Chromium the test fails at once, not after starting the demo.
def test_support_person_walks_through_every_page(browser: webdriver.Chrome, demo: RunningDemo):
    ui = Dashboard(browser)
    ui.sign_in(demo.url, demo.password)

    # Everything the demo PACS holds has been pulled, and the worker's health check has passed:
    # the clinic is green. (The page shows what was true when it ran, hence opening it again.)
    pulled = f"{len(demo_datasets())} instances pulled"
    poll(
        "demo-clinic to be green with everything pulled",
        lambda: (
            ui.open_page("Overview", "demo-clinic")
            or ("demo-clinic: 🟢 green" in ui.text() and pulled in ui.text())
        ),
    )
    ui.screenshot("overview")

    ui.open_page("Connection test", "Patient ID")
    ui.type_into("Patient ID", PATIENT)
    ui.button("Test connection").click()
    ui.settled("the connection test", f"5 studies found for patient {PATIENT}")
    ui.wait_for_count('[data-testid="stAlertContentSuccess"]', 1, "the green box")
    ui.screenshot("connection-test")

    ui.open_page("Patient measurements", "Patient ID")
    ui.type_into("Patient ID", PATIENT)
    ui.settled("the patient's measurements", "Stimulation monitoring")
    # The cycle's scans, one row each; left ovary, right ovary, counts per side, endometrium.
    ui.wait_for_count('[data-testid="stDataFrame"]', 1, "the table of the cycle's scans")
    ui.wait_for_count(".js-plotly-plot .main-svg", 4, "the follicle and endometrium charts")
    assert "as information for the clinician" in ui.text()
    ui.wait_for_count('[data-testid="stDownloadButton"]', 2, "the CSV and FHIR downloads")
    ui.screenshot("patient-measurements")

    # The patient's latest visit, from the study buttons under the charts: it has a cine loop.
    # Buttons, not links: the study is opened through the session, never put in the URL.
    latest = poll(
        "the button of the patient's latest study",
        lambda: next((b for b in ui.find("button") if "follicle monitoring" in b.text), None),
    )
    latest.click()
    ui.settled("the study", "SR measurements")
    ui.wait_for_count('[data-testid="stImage"] img', 1, "the image viewer")
    # The search results and, beside the image, the study's SR measurements.
    ui.wait_for_count('[data-testid="stDataFrame"]', 2, "the measurements table")
    ui.screenshot("studies")
    # Neither the patient nor the study reached the address bar (history, proxy logs).
    assert PATIENT not in ui.driver.current_url
    assert "study=" not in ui.driver.current_url

    ui.open_page("Sync activity", "No dead letters")
    ui.wait_for_count('[data-testid="stDataFrame"]', 2, "the runs and the sync requests")
    ui.screenshot("sync-activity")

    ui.open_page("Integration settings", "demo-clinic")
    ui.screenshot("integration-settings")

    ui.open_page("Code mappings", "Code mappings")
