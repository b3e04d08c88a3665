"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the
dashboard's browser tests and bench/dashboard.py: `start_browser(tmp)` and the `browser` fixture,
which always quits the browser (and so chromedriver) at teardown."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# As root in a sandboxless container, with no network beyond loopback: nothing in the background.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


def start_browser(profile: Path, log: Path | None = None) -> webdriver.Chrome:
    """A new headless Chromium with its own profile folder `profile`; its console (every level)
    is kept for `console_errors`."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(log) if log else None)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)  # a loaded CI machine: a deadline, not a figure
    driver.set_script_timeout(60)
    return driver


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The browser console's SEVERE lines since the last call (a CSP violation, a JS error)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait(driver: webdriver.Chrome, condition: Callable[[Any], Any], timeout: float = 10) -> Any:
    """The first truthy value of `condition(driver)` within `timeout` seconds (TimeoutException)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium, quit at teardown whatever happened in the test."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    driver = start_browser(profile, tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
