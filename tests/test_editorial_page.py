"""The search page shows pinned hits like the others, marked, with their text escaped (a real Chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{CHROMIUM} is missing; CI is set, so a missing browser is a failure", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the page tests", allow_module_level=True)

from conftest import BROWSER_ARGS, SAMPLE, build_index, serve_in_thread, write_jsonl  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from test_page import CANARY_SLUG, CANARY_TITLE, canary_record  # noqa: E402

from search_service.editorial.store import EditorialStore  # noqa: E402
from search_service.http.app import create_app  # noqa: E402
from search_service.settings import Settings  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("pinned-page")
    built = build_index(root / "index", [SAMPLE, write_jsonl(root / "canary.jsonl", [canary_record()])])
    # The hostile canary, pinned first for a query it does not match.
    rule = {"id": "oil-desk", "query": "oil", "match": "exact", "filters": {}, "hide": []}
    rule |= {"pin": [{"slug": CANARY_SLUG, "position": 1}], "active_from": None, "active_until": None}
    EditorialStore(built.index_dir).replace("rules", [rule])
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        app = create_app(Settings(index_dir=built.index_dir, search_budget_ms=60_000, access_log=False))
    with serve_in_thread(app) as url:
        yield url


def test_a_pinned_hit_is_shown_first_marked_and_escaped(base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base}/?q=oil")
            page.wait_for_function("() => !document.getElementById('main').hasAttribute('aria-busy')")
            hits = page.locator("#results .hit")
            expect(hits.first.locator(".hit-title")).to_have_text(CANARY_TITLE)
            expect(hits.first.locator(".hit-pinned")).to_have_text("Pinned")
            assert hits.count() > 1
            assert page.locator("#results .hit-pinned").count() == 1
            assert page.evaluate("typeof window.__xss") == "undefined" and errors == []
        finally:
            browser.close()
