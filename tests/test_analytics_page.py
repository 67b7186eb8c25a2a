"""The analytics page (/admin/analytics) and the search page's analytics events, in Debian's Chromium.

A live uvicorn server over the sample index; the searches and clicks the page shows are made over
HTTP first, and the admin API is the oracle for what the page must draw.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import SAMPLE, build_index, serve_in_thread
from playwright.sync_api import Browser, Page, expect
from test_page import open_page

from search_service.http.app import create_app
from search_service.settings import Settings

ADMIN_KEY = "page-admin-key"
FLUSH_S = 0.2


@dataclass
class Server:
    base: str

    def search(self, q: str, **params: Any) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/search", params={"q": q, **params})
        response.raise_for_status()
        return response.json()

    def admin(self, report: str, **params: Any) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base}/admin/analytics/{report}", params=params, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        response.raise_for_status()
        return response.json()

    def row(self, report: str, q: str) -> dict[str, Any] | None:
        return next((r for r in self.admin(report, limit=1000)["rows"] if r["q"] == q), None)


def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("analytics-page")
    build_index(root / "index", [SAMPLE])
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        settings = Settings(
            index_dir=root / "index",
            admin_key=ADMIN_KEY,
            analytics_flush_s=FLUSH_S,
            analytics_suggest_min_count=3,
            analytics_suggest_refresh_s=0.2,
            search_budget_ms=60_000,
        )
        app = create_app(settings)
    with serve_in_thread(app) as base:
        served = Server(base)
        # What the page will show: a query with results and clicks, one that found nothing.
        for _ in range(3):
            answer = served.search("opec output")
        hit = answer["hits"][1]
        httpx.post(f"{served.base}/events", json={"query_id": answer["query_id"], "slug": hit["slug"], "position": 2})
        for _ in range(2):
            served.search("zyzzyva & <b>nothing</b>")
        eventually(lambda: served.row("no-results", "zyzzyva & <b>nothing</b>"))
        yield served


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened, watch = open_page(browser)
    # Result links lead off-site: answer them here, so opening one stays inside the test.
    opened.context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.fulfill(body="elsewhere"))
    yield opened
    watch.check(opened)
    opened.context.close()


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.base}/admin/analytics")
    page.fill("#key", ADMIN_KEY)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#top tbody tr").first).to_be_visible()
    page.wait_for_function("() => !document.getElementById('report').hasAttribute('aria-busy')")


def cells(page: Page, table: str) -> list[list[str]]:
    return page.locator(f"{table} tbody tr").evaluate_all(
        "(rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )


def test_the_page_draws_searches_per_day_and_fills_its_tables(page: Page, server: Server):
    sign_in(page, server)
    summary = server.admin("summary", since="30d")
    bars = page.locator("#chart rect.bar").evaluate_all(
        "(els) => els.map((el) => [el.dataset.day, Number(el.dataset.searches), Number(el.getAttribute('height'))])"
    )
    assert len(bars) == 31, "one bar a day, from 30 days ago to today"
    assert sum(searches for _, searches, _ in bars) == summary["searches"] > 0
    today = max(bars)
    assert today[1] == summary["days"][-1]["searches"] and today[2] > max(h for d, s, h in bars if s == 0)

    top = cells(page, "#top")
    assert top[[r[0] for r in top].index("opec output")][:4] == ["opec output", "3", "1", "33.3%"]
    none = cells(page, "#no-results")
    assert ["zyzzyva & <b>nothing</b>", "2"] in none, "shown as text, not markup"
    assert page.locator("#no-results b").count() == 0
    positions = cells(page, "#positions")
    assert positions == [["2", "1", "100.0%"]]
    expect(page.locator("#totals")).to_contain_text(f"{summary['searches']}")


def test_the_key_is_kept_for_the_tab_only_and_a_wrong_one_is_refused(browser: Browser, page: Page, server: Server):
    sign_in(page, server)
    assert page.evaluate("sessionStorage.getItem('search-admin-key')") == ADMIN_KEY
    assert page.evaluate("localStorage.length") == 0
    another_tab = page.context.new_page()
    another_tab.goto(f"{server.base}/admin/analytics")
    expect(another_tab.locator("#key-form")).to_be_visible()
    another_tab.fill("#key", "wrong-key")
    another_tab.click("#key-form button[type=submit]")
    expect(another_tab.locator("#key-error")).to_contain_text("refused")
    assert another_tab.evaluate("sessionStorage.length") == 0
    another_tab.close()


def test_a_no_result_query_opens_in_the_search_page(page: Page, server: Server):
    sign_in(page, server)
    link = page.locator("#no-results a", has_text="zyzzyva & <b>nothing</b>")
    link.click()
    page.wait_for_url(re.compile(r"/\?q="))
    assert parse_qs(urlsplit(page.url).query) == {"q": ["zyzzyva & <b>nothing</b>"]}
    expect(page.locator("#q")).to_have_value("zyzzyva & <b>nothing</b>")
    expect(page.locator("#results .empty-title")).to_have_text("No articles match.")


def test_opening_a_result_in_the_search_page_counts_a_click(page: Page, server: Server):
    page.goto(f"{server.base}/?q=Bank+rates")
    expect(page.locator("#results .hit").first).to_be_visible()
    page.wait_for_function("() => !document.getElementById('main').hasAttribute('aria-busy')")
    second = page.locator("#results .hit-title a").nth(1)
    second.click()
    page.wait_for_url(re.compile(r"^https?://(?!127\.0\.0\.1)"))
    row = eventually(lambda: (server.row("top-queries", "bank rates") or {}).get("clicks") == 1 and server.row(
        "top-queries", "bank rates"))  # fmt: skip
    assert row, server.row("top-queries", "bank rates")
    assert (row["count"], row["clicks"], row["mean_click_position"]) == (1, 1, 2)


def test_typing_in_the_search_box_counts_one_search_where_the_reader_stopped(page: Page, server: Server):
    page.goto(f"{server.base}/")
    page.wait_for_function("() => !document.getElementById('main').hasAttribute('aria-busy')")
    page.locator("#q").press_sequentially("nuclear power", delay=220)
    expect(page.locator("#status")).to_contain_text(re.compile(r"\d+ articles?"))
    row = eventually(lambda: server.row("top-queries", "nuclear power"), timeout=15)
    assert row and row["count"] == 1
    time.sleep(1)
    counted = {r["q"] for r in server.admin("top-queries", limit=1000)["rows"]}
    assert not {q for q in counted if "nuclear power".startswith(q) and q != "nuclear power"}, counted


def test_a_query_many_readers_searched_is_suggested_in_the_search_box(page: Page, server: Server):
    page.goto(f"{server.base}/")
    page.locator("#q").press_sequentially("opec", delay=60)
    option = page.locator("#suggestions [role=option]", has_text="opec output")
    expect(option).to_be_visible()
    expect(option).to_contain_text("Often searched")
    option.click()
    expect(page.locator("#q")).to_have_value("opec output")
    assert parse_qs(urlsplit(page.url).query) == {"q": ["opec output"]}
