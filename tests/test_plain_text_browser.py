"""PACS-supplied text escaped by `plain` shows as written in a real browser: no link, image,
formatting or math, in every kind of element the pages put such text in.

AppTest sees only the markdown source; what the browser's markdown renderer makes of it
(GFM turns bare URLs into links even when escaped) needs Chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from dashboard._widgets import WORD_JOINER

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = (
    "[Sign in again](https://evil.example/login) ![x](https://evil.example/t.png) "
    "<b>bold</b> www.evil.example mail@evil.example *em* :red[x] $x^2$"
)
APP = f"""
import streamlit as st
from dashboard._widgets import plain

text = {HOSTILE!r}
st.error(plain(text))
st.subheader(plain(text))
st.caption(plain(text))
st.button(plain(text))
with st.expander(plain(text)):
    st.write("inside")
"""


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
        ],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)  # noqa: S310 - loopback
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("streamlit did not start")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_escaped_pacs_text_renders_as_written(app_url):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing: "
            "scripts/install-system-packages chromium chromium-driver",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        browser.get(app_url)
        deadline = time.monotonic() + 60
        while not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"]'):
            assert time.monotonic() < deadline, "the page did not render"
            time.sleep(0.2)
        main = browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]')
        links = [a.get_attribute("href") for a in main.find_elements(By.TAG_NAME, "a")]
        formatted = [
            element.get_attribute("outerHTML")[:80]
            for element in main.find_elements(By.CSS_SELECTOR, "img, b, strong, em, .katex")
        ]
        shown = main.text.replace(WORD_JOINER, "").splitlines()
    finally:
        browser.quit()

    # The heading's own anchor (#slug) stays on the page; nothing may lead anywhere else.
    assert [link for link in links if not link.startswith(f"{app_url}/#")] == []
    assert formatted == []
    assert shown.count(HOSTILE) == 5, shown  # alert, heading, caption, button, expander
