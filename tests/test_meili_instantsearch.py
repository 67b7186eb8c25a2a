"""An InstantSearch page (npm instantsearch.js + @meilisearch/instant-meilisearch, installed by
scripts/install-js) served from another origin than the API and driven in Chromium: search box,
refinement list counts equal to /search's disjunctive counts, a range on published_at,
pagination, highlighted titles and cropped snippets, sort by newest, and no console errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import CHROMIUM, REPO, SAMPLE, build_index, read_jsonl, serve_in_thread

JS = REPO / "tests" / "meili_js"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
_missing = [p for p in (CHROMIUM, JS / "node_modules" / "@meilisearch" / "instant-meilisearch") if not p.exists()]
if _missing:
    _reason = f"{_missing[0]} is missing: scripts/install-browser and scripts/install-js install what this test needs"
    if IN_CI:
        pytest.fail(f"{_reason}; CI is set, so this is a failure", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import FileResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from search_service.http.app import create_app  # noqa: E402
from search_service.settings import Settings  # noqa: E402


@dataclass(frozen=True)
class Sites:
    page: str  # the InstantSearch page's origin
    api: str  # the service's origin


def page_site() -> Starlette:
    async def index(request: Any) -> FileResponse:
        return FileResponse(JS / "instantsearch.html")

    return Starlette(
        routes=[
            Route("/", index),
            Mount("/node_modules", StaticFiles(directory=JS / "node_modules", follow_symlink=True)),
        ]
    )


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    index_dir = tmp_path_factory.mktemp("instantsearch") / "index"
    build_index(index_dir, [SAMPLE])
    with serve_in_thread(page_site()) as page_url:
        settings = Settings(index_dir=index_dir, search_budget_ms=60_000, cors_origins=[page_url])
        with serve_in_thread(create_app(settings)) as api_url:
            yield Sites(page_url, api_url)


@pytest.fixture
def page(browser: Any, sites: Sites) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(f"{sites.page}/?api={sites.api}/meili")
    expect(page.locator("#stats")).to_contain_text("40 articles")
    yield page
    context.close()
    assert problems == []


def search(sites: Sites, **params: Any) -> dict[str, Any]:
    return httpx.get(sites.api + "/search", params={"facets": "topics", "facet_size": 100, **params}).json()


def shown_counts(page: Page) -> dict[str, int]:
    items = page.locator("#topics .ais-RefinementList-item")
    labels = items.locator(".ais-RefinementList-labelText").all_inner_texts()
    counts = items.locator(".ais-RefinementList-count").all_inner_texts()
    return {label: int(count) for label, count in zip(labels, counts, strict=True)}


def test_search_box_highlights_titles_and_crops_snippets(page: Page, sites: Sites):
    page.locator("#searchbox input").fill("rates")
    expected = search(sites, q="rates", prefix="true")["total"]
    expect(page.locator("#stats")).to_contain_text(f"{expected} articles")
    marks = page.locator("#hits h2 mark.ais-Highlight-highlighted")
    expect(marks.first).to_be_visible()
    assert all(m.lower().startswith("rate") for m in marks.all_inner_texts())
    snippet = page.locator("#hits .ais-Snippet").first.inner_text()
    assert len(snippet.replace("…", " ").split()) <= 8


def test_refinement_counts_are_search_s_disjunctive_counts(page: Page, sites: Sites):
    page.locator("#topics .ais-RefinementList-item", has_text="energy").locator("input").check()
    plain = search(sites, topic="energy")
    expect(page.locator("#stats")).to_contain_text(f"{plain['total']} articles")
    page.locator("#topics .ais-RefinementList-item", has_text="climate").locator("input").check()
    plain = search(sites, topic=["energy", "climate"])
    expect(page.locator("#stats")).to_contain_text(f"{plain['total']} articles")
    expected = {v["value"]: v["count"] for v in plain["facets"]["topics"]}
    page.wait_for_timeout(200)
    assert shown_counts(page) == expected


def test_range_on_published_at_pagination_and_newest_first(page: Page, sites: Sites):
    records = sorted(read_jsonl(SAMPLE), key=lambda r: datetime.fromisoformat(r["published_at"]), reverse=True)
    low = int(datetime.fromisoformat(records[30]["published_at"]).timestamp())
    high = int(datetime.fromisoformat(records[10]["published_at"]).timestamp())
    page.locator("#range input.ais-RangeInput-input--min").fill(str(low))
    page.locator("#range input.ais-RangeInput-input--max").fill(str(high))
    page.locator("#range button").click()
    after = datetime.fromtimestamp(low, UTC).isoformat()
    before = datetime.fromtimestamp(high + 1, UTC).isoformat()
    expected = search(sites, published_after=after, published_before=before)["total"]
    expect(page.locator("#stats")).to_contain_text(f"{expected} articles")
    page.locator("#range input.ais-RangeInput-input--min").fill("")
    page.locator("#range input.ais-RangeInput-input--max").fill("")
    page.locator("#range button").click()
    expect(page.locator("#stats")).to_contain_text("40 articles")

    page.locator("#sort select").select_option(label="Newest")
    expect(page.locator("#hits h2").first).to_have_attribute("data-slug", records[0]["slug"])
    page.locator('#pagination a[aria-label="Page 2"]').click()
    expect(page.locator("#hits h2").first).to_have_attribute("data-slug", records[5]["slug"])
