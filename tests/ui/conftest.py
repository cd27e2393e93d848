"""Browser fixtures: Debian's Chromium driven by Playwright, with every non-local request refused.

Never ``playwright install``: the deployment machines have no internet, and neither do these tests —
any request to a host other than this machine is aborted and recorded, and the tests assert there
were none. That is how "no CDN at run time" is kept true.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from tests.ui.support import insert_territory, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class BrowserLog:
    """What the page did that a test should see: requests refused, console errors, failed responses."""

    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def territory_db(fresh_db):
    """This module's fresh database with the tiny territory in it."""
    insert_territory(fresh_db)
    return fresh_db


@pytest.fixture(scope="module")
def map_server(territory_db):
    """The real app on the tiny territory, served on a free local port; yields the base URL."""
    with running_server(territory_db) as base_url:
        yield base_url


def open_page(browser, log: BrowserLog):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")

    def only_local(route):
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            log.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and log.console_errors.append(message.text))
    page.on("pageerror", lambda error: log.console_errors.append(f"uncaught: {error}"))
    page.on("response", lambda response: response.status >= 400
            and log.failed_responses.append(f"{response.status} {response.url}"))
    return context, page


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def page(browser, browser_log):
    context, page = open_page(browser, browser_log)
    yield page
    context.close()


@contextmanager
def pages_per_user(browser, base_url: str, password: str, *, check_console: bool = True):
    """One browser context a user, logged in through the login API on first use: yields
    ``(page_of, logs, pages)``. On exit the contexts are closed, then no request may have left the machine
    (and, with ``check_console``, no page may have logged a console error)."""
    logs: dict[str, BrowserLog] = {}
    contexts, pages = [], {}

    def page_of(username: str):
        if username not in pages:
            logs[username] = BrowserLog()
            context, page = open_page(browser, logs[username])
            contexts.append(context)
            response = context.request.post(f"{base_url}/api/v1/auth/login",
                                            data={"username": username, "password": password})
            assert response.ok, response.text()
            pages[username] = page
        return pages[username]

    yield page_of, logs, pages
    for context in contexts:
        context.close()
    for username, log in logs.items():
        assert log.blocked == [], f"{username}: requests left the machine: {log.blocked}"
        if check_console:
            assert log.console_errors == [], f"{username}: {log.console_errors}"
