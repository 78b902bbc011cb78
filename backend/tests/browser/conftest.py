"""The console in real headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.server_process import ServerProcess

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, which
# the asyncio tests of other modules must not find running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("console")).start()
    yield proc
    proc.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


class Api:
    """The JSON API, as another supervisor or the agent would use it."""

    def __init__(self, base: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=10)

    def ask(self, question: str, name: str = "Dana", **extra: object) -> dict:
        r = self.http.post("/api/help-requests", json={"customer_name": name, "question": question, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    def answer(self, rid: str, answer: str, **extra: object) -> httpx.Response:
        return self.http.post(f"/api/help-requests/{rid}/response", json={"answer": answer, **extra})


@pytest.fixture
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server.base)
    yield client
    client.http.close()


def open_console(page: Page, base: str, path: str = "/") -> None:
    page.goto(base + path)
    page.locator("#live.on").wait_for()


# Where the view tests write their screenshots: a temporary folder, unless `make screenshots` asks
# for the README's own (docs/).
DOCS = Path(os.environ.get("HITL_SCREENSHOTS") or tempfile.mkdtemp(prefix="hitl-screenshots-"))
