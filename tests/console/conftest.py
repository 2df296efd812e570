"""The console against the real pieces: sandbox, gateway, stores owner, ingest, mapping service, audit service, all
on the session broker, and a real Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from services.audit.service import create_app as audit_app
from services.audit.store import AuditStore
from shared.settings import Settings
from shopsync.commands.console import console_app
from tests.ingest_harness import Harness
from tests.mapping_harness import MappingHarness, admin_token, running_mapping
from tests.servers import serve_app

CHROMIUM = Path("/usr/bin/chromium")
# the screenshots of docs/console.md are rewritten only when asked (SHOPSYNC_UPDATE_DOCS=1): a test run leaves the
# checkout as it found it
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "console" if os.environ.get("SHOPSYNC_UPDATE_DOCS") == "1"
         else Path(tempfile.gettempdir()) / "shopsync-console-shots")
PASSWORD = "console-test-password-0123456789abcdef"
READONLY = "console-test-readonly-0123456789abcdef"


@dataclass
class Console:
    url: str
    settings: Settings
    harness: Harness
    mapping: MappingHarness
    browser: Browser

    async def signed_in(self, secret: str = PASSWORD) -> Page:
        """A fresh browser context (its own cookies), signed in with `secret`."""
        context = await self.browser.new_context(viewport={"width": 1000, "height": 640})
        page = await context.new_page()
        await page.goto(self.url + "/stores")
        assert "/signin" in page.url
        await page.fill("input[name=secret]", secret)
        await page.click("main form button")
        await page.wait_for_selector("h1:text-is('Stores')")
        return page


async def shot(page: Page, name: str) -> None:
    """A small screenshot for docs/console.md."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


def chromium() -> Path:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
async def console(harness: Harness, tmp_path: Path) -> AsyncIterator[Console]:
    """The whole pipeline and the console, served; a browser to drive it."""
    executable = chromium()
    s = admin_token(harness.settings).model_copy(update={
        "shopsync_console_password": type(harness.settings.shopsync_admin_token)(PASSWORD),
        "shopsync_console_readonly_token": type(harness.settings.shopsync_admin_token)(READONLY),
        "tiktok_api_base": harness.sandbox.base_url, "tiktok_auth_base": harness.sandbox.base_url})
    await harness.start_ingest()
    async with contextlib.AsyncExitStack() as stack:
        mapping = await stack.enter_async_context(running_mapping(s))
        s = s.model_copy(update={"shopsync_mapping_url": str(mapping.api.base_url).rstrip("/")})
        audit_url = await stack.enter_async_context(serve_app(audit_app(s, AuditStore(tmp_path / "audit.db"))))
        s = s.model_copy(update={"shopsync_audit_url": audit_url})
        url = await stack.enter_async_context(serve_app(console_app(s)))
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        async with httpx.AsyncClient() as http:
            assert (await http.get(url + "/healthz")).status_code == 200
        yield Console(url, s, harness, mapping, browser)
