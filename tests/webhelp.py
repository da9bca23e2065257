"""Driving the web console in a real browser: a real pyvirtd with its TLS listener on
127.0.0.1 (self-signed certificate), a web console user, and Playwright's chromium (Debian's
``/usr/bin/chromium``: Playwright cannot download its own browser here).

``web_console(root, screens)`` is a context manager giving a :class:`Web`: the daemon, a
logged-in page, and :meth:`Web.visit` / :meth:`Web.shot`, which save a screenshot of every
page visited under ``screens`` (a test module's ``tmp_path_factory`` directory, or
``$PYVIRT_TEST_SCREENS`` when set). It skips the test when chromium, Playwright or the built
bundle (``web/dist``: ``scripts/setup.sh``) is missing. One daemon and one browser per test
module: build a module-scoped fixture on it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyvirt.api.users import add_user
from pyvirt.daemon.web.static import dist_dir
from tests.daemonhelp import RunningDaemon, free_port, pyvirtd

CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "alice", "correct horse battery"


def screens_dir(tmp_path_factory: pytest.TempPathFactory, module: str) -> Path:
    """Where a module's screenshots go: ``$PYVIRT_TEST_SCREENS/MODULE`` or a pytest dir."""
    env = os.environ.get("PYVIRT_TEST_SCREENS")
    if env:
        path = Path(env) / module
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = tmp_path_factory.getbasetemp() / f"screens-{module}"
    path.mkdir(exist_ok=True)  # a rerun of a failed test finds the first attempt's
    return path


def goto(page: Any, url: str) -> Any:
    """``page.goto(url)``, again when chromium gives up with ``ERR_NETWORK_CHANGED``: it
    cancels requests, loopback ones too, when an interface comes or goes on the host, and
    other tests make taps, bridges and veth pairs all the time."""
    for attempt in range(3):
        try:
            return page.goto(url)
        except Exception as err:
            if "ERR_NETWORK_CHANGED" not in str(err) or attempt == 2:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def require_browser() -> None:
    """Skip unless chromium, Playwright and the built web console are there."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; scripts/setup.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not (dist_dir() / "app.js").exists():
        pytest.skip(f"the web console is not built ({dist_dir()}): run scripts/setup.sh")


@dataclass
class Web:
    """A running daemon and a browser page logged in to its web console."""

    daemon: RunningDaemon
    base: str
    screens: Path
    browser: Any
    context: Any
    page: Any
    shots: list[Path] = field(default_factory=list)

    def shot(self, name: str, page: Any = None) -> Path:
        """Save a screenshot of the page as ``NN-name.png``."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "page"
        path = self.screens / f"{len(self.shots) + 1:02d}-{safe}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def visit(self, where: str, name: str | None = None, ready: str | None = None) -> Any:
        """Open ``where`` (``#/...`` for a page of the console, or a path), wait until the
        element ``ready`` (a CSS selector) shows, then save a screenshot."""
        url = self.base + "/" + where if where.startswith("#") else self.base + where
        if self.page.url == url:
            self.page.reload()
        else:
            goto(self.page, url)
        if ready:
            self.page.locator(ready).first.wait_for()
        self.shot(name or where.strip("#/") or "overview")
        return self.page

    def new_context(self) -> Any:
        """A fresh browser context (no cookies: not logged in)."""
        return self.browser.new_context(ignore_https_errors=True, base_url=self.base)

    def login(self, page: Any, user: str = USER, password: str = PASSWORD) -> None:
        """Log in through the form."""
        goto(page, self.base + "/login")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()


@contextmanager
def web_console(root: Path, screens: Path, *, viewport: tuple[int, int] = (1280, 800),
                args: tuple[str, ...] = ()) -> Iterator[Web]:  # fmt: skip
    """A pyvirtd on ``root`` with a TLS listener, user :data:`USER`, and a chromium page
    logged in (the overview shown)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    add_user(USER, PASSWORD, root)
    port = free_port()
    with pyvirtd(root, tls_port=port, args=args) as daemon, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--disable-dev-shm-usage", "--disable-gpu"])  # fmt: skip
        try:
            base = f"https://127.0.0.1:{port}"
            context = browser.new_context(
                ignore_https_errors=True, base_url=base,
                viewport={"width": viewport[0], "height": viewport[1]},
            )  # fmt: skip
            page = context.new_page()
            web = Web(daemon, base, screens, browser, context, page)
            web.login(page)
            page.wait_for_url(base + "/")
            yield web
        finally:
            browser.close()


def chromium_available() -> bool:
    """True if Debian's chromium is installed."""
    return Path(CHROMIUM).exists() and shutil.which("chromium") is not None
