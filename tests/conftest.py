"""Shared fixtures: a live HTTP server for an ASGI app and a headless Chromium driver."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    """``app`` served as the commands serve it (see ``hardened_server``); yields its base URL."""
    pytest.importorskip("uvicorn")
    from hardened_server import hardened_server

    with hardened_server(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], str]]:
    """``live_server(app)`` serves an ASGI app on a free loopback port and returns its base URL;
    every server started stops at the end of the test."""
    with _ServerStack() as start:
        yield start


class _ServerStack:
    def __init__(self) -> None:
        self._open: list[Any] = []

    def __enter__(self) -> Callable[[Any], str]:
        def start(app: Any) -> str:
            context = _serving(app)
            url = context.__enter__()
            self._open.append(context)
            return url

        return start

    def __exit__(self, *exc: object) -> None:
        while self._open:
            self._open.pop().__exit__(None, None, None)


def chromium_paths() -> tuple[str, str] | None:
    """Debian's chromium and chromium-driver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def make_chrome(extra_args: tuple[str, ...] = ()) -> Any:
    """A headless Chromium WebDriver (skips the test when Chromium or Selenium is missing)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    paths = chromium_paths()
    if paths is None:
        pytest.skip("chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(paths[1]))
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def chrome() -> Iterator[Any]:
    """A headless Chromium WebDriver, quit after the test."""
    driver = make_chrome()
    try:
        yield driver
    finally:
        driver.quit()
