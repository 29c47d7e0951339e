"""The web UI in a real headless browser (Debian's chromium driven by Playwright): sign in, ask, see sources."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import sync_playwright

from tests.serve.conftest import Server

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these


def test_sign_in_ask_and_see_the_answer_with_its_source(server: Server) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is installed by scripts/test.sh (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server.url)
        page.fill("#key", "rt-wrong-key")
        page.click("#sign-in")
        page.wait_for_selector("#login-error:has-text('Sign-in failed')")
        page.fill("#key", server.keys["dana"])
        page.click("#sign-in")
        page.wait_for_selector("#app:not(.hidden)")
        assert "dana" in page.inner_text("#who") and page.is_hidden("#documents"), "uploads are for admins"
        page.fill("#question", "How many days of paid annual leave do full-time employees get per year?")
        page.click("#send")
        page.wait_for_selector("#sources .source", timeout=120_000)
        page.wait_for_function("document.querySelector('#send').disabled === false", timeout=120_000)
        answer = page.inner_text("#messages .msg.assistant")
        assert "25" in answer
        assert "policies/annual-leave.md" in page.inner_text("#sources")

        admin = browser.new_page()
        admin.goto(server.url)
        admin.fill("#key", server.keys["admin"])
        admin.click("#sign-in")
        admin.wait_for_selector("#documents:not(.hidden)")
        admin.wait_for_selector("#document-rows tr")
        assert "policies/annual-leave.md" in admin.inner_text("#document-rows")
        browser.close()
