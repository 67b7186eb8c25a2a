"""The search page (GET /) in a real browser: Playwright driving Debian's Chromium against a live server.

The server is uvicorn on a free loopback port over an index of the sample corpus, bad.jsonl and one
extra canary record whose markup would set `window.__xss` if it ever ran. Every test fails if a dialog
opens, a script error or console error occurs, or the canary fires. The API itself is the oracle for
totals and counts. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from conftest import CHROMIUM

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
if not CHROMIUM.exists():
    _reason = f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-browser) to run the page tests"
    if IN_CI:
        pytest.fail(f"{_reason}; CI is set, so a missing browser is a failure", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from conftest import BAD, REPO, SAMPLE, build_index, load_seed, serve_in_thread, write_jsonl  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from search_service.http.app import create_app  # noqa: E402
from search_service.settings import Settings  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"
# Ways for page code to turn a string into markup or code: the page's scripts use none of them.
MARKUP_SINKS = re.compile(r"\.(?:inner|outer)HTML\s*\+?=|insertAdjacentHTML|document\.write|\beval\(|new Function")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# bad.jsonl's hostile values (lines 32-34), as the index stores them.
BAD_TITLE = "<script>alert(1)</script> STANDARD OIL <SRD> TO FORM FINANCIAL UNIT"
BAD_TOPIC = '"><svg onload=alert(1)>'
BAD_ENTITY = "<b onmouseover=alert(1)>Reserve Bank</b>"

# A record whose every text field would set window.__xss if any of it were parsed as HTML.
CANARY_SLUG = "xss-canary-zyzzyva"
CANARY_TITLE = '<img src=x onerror="window.__xss=1"> Zyzzyva canary <script>window.__xss=2</script> &amp; &lt;b&gt;'
CANARY_TOPIC = "<img src=x onerror=window.__xss=8>"
CANARY_ENTITY = '"><script>window.__xss=9</script>'


def canary_record() -> dict[str, Any]:
    record = load_seed()
    record.update(
        slug=CANARY_SLUG,
        title=CANARY_TITLE,
        summary='<svg onload="window.__xss=3"></svg> zyzzyva summary',
        body_md=(
            "# Zyzzyva\n\n<script>window.__xss=4</script> [click](javascript:window.__xss=5) zyzzyva body "
            '<iframe src="javascript:window.__xss=6"></iframe> <img src=x onerror=window.__xss=7>'
        ),
        url="https://canary.example/a?x=%22%3E%3Cimg%20src=x%20onerror=window.__xss=10%3E",
        topics=["zyzzyva-topic", CANARY_TOPIC],
        entities=[CANARY_ENTITY, "Zyzzyva & Sons <b>"],
    )
    return record


# -- the server and the browser -----------------------------------------------------------------


@dataclass
class Server:
    base: str

    def api(self, path: str, **params: Any) -> dict[str, Any]:
        """The API's answer: the oracle for what the page shows."""
        response = httpx.get(f"{self.base}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def url(self, **params: Any) -> str:
        return f"{self.base}/?{urlencode(params, doseq=True)}" if params else f"{self.base}/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not BAD.exists():
        pytest.fail(f"test corpus {BAD} is missing")
    root = tmp_path_factory.mktemp("page")
    canary = write_jsonl(root / "canary.jsonl", [canary_record()])
    built = build_index(root / "index", [SAMPLE, BAD, canary])
    assert CANARY_SLUG not in {reject.slug for reject in built.rejects}, "the canary record was rejected"

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        app = create_app(Settings(index_dir=root / "index", search_budget_ms=60_000))
    with serve_in_thread(app) as base:
        yield Server(base)


@dataclass
class Watch:
    """What a page did that it must not: dialogs, uncaught errors, console errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        return page

    def check(self, page: Page) -> None:
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.errors == [], f"errors in the page: {self.errors}"
        assert page.evaluate("typeof window.__xss") == "undefined", "a hostile payload ran"


def open_page(browser: Browser, viewport: dict[str, int] = DESKTOP, **options: Any) -> tuple[Page, Watch]:
    context = browser.new_context(viewport=viewport, **options)
    watch = Watch()
    return watch.attach(context.new_page()), watch


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page; after the test, nothing hostile or broken may have happened in it."""
    opened, watch = open_page(browser)
    yield opened
    watch.check(opened)
    opened.context.close()


# -- reading the page ---------------------------------------------------------------------------


def settle(page: Page) -> None:
    """Wait for the page's search to finish drawing (the main column is aria-busy while it runs)."""
    page.wait_for_function("() => !document.getElementById('main').hasAttribute('aria-busy')")


def shown_total(page: Page) -> int:
    text = page.locator("#status").inner_text()
    found = re.match(r"([\d,]+) articles?", text)
    assert found, f"no total in the status line {text!r}"
    return int(found.group(1).replace(",", ""))


def expect_total(page: Page, total: int) -> None:
    expect(page.locator("#status")).to_contain_text(re.compile(rf"^{total:,} articles?\b"))
    settle(page)


def facet_counts(page: Page, facet: str) -> list[tuple[str, int]]:
    rows = page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} .facet-item`)].map(
            (row) => [row.querySelector('.facet-value').textContent, row.querySelector('.facet-count').textContent])""",
        facet,
    )
    return [(value, int(count.replace(",", ""))) for value, count in rows]


def api_counts(values: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(v["value"], v["count"]) for v in values]


def url_params(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def facet_checkbox(page: Page, facet: str, value: str) -> Any:
    rows = page.locator(f"#{facet} .facet-item").filter(
        has=page.locator(".facet-value", has_text=re.compile(rf"^{re.escape(value)}$"))
    )
    return rows.locator("input[type=checkbox]")


def hit_dates(page: Page) -> list[datetime]:
    values = page.locator("#results .hit time").evaluate_all("(els) => els.map((el) => el.getAttribute('datetime'))")
    return [datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values]


def bars(page: Page) -> list[tuple[str, int]]:
    """The histogram's bars as (label, count), from their accessible names."""
    labels = page.locator("#histogram .bar").evaluate_all("(els) => els.map((el) => el.getAttribute('aria-label'))")
    out = []
    for label in labels:
        head, _, count = label.rpartition(": ")
        out.append((head, int(count.split()[0].replace(",", ""))))
    return out


def bucket_date(label: str) -> date:
    """'Week of 2 Mar 2026', '2 Mar 2026', 'Mar 2026' or '1987' as the bucket's first day."""
    text = label.removeprefix("Week of ")
    for pattern in ("%d %b %Y", "%b %Y", "%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise AssertionError(f"unexpected bar label {label!r}")


def assert_inert(page: Page) -> None:
    """No markup from the data became elements: no scripts, handlers, images, frames or odd links."""
    found = page.evaluate(
        """() => ({
            scripts: [...document.scripts].map((s) => s.getAttribute('src')),
            handlers: [...document.querySelectorAll('*')].flatMap((el) =>
                [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${el.tagName} ${a.name}`)),
            foreign: [...document.body.querySelectorAll('img, svg, iframe, object, embed, b, style, link')].map(
                (el) => el.outerHTML.slice(0, 80)),
            links: [...document.querySelectorAll('a[href]')].map((a) => a.href)
                .filter((href) => !/^https?:\\/\\//i.test(href)),
        })"""
    )
    assert found["scripts"] == ["/static/app.js"], found["scripts"]
    assert found["handlers"] == [], found["handlers"]
    assert found["foreign"] == [], found["foreign"]
    assert found["links"] == [], found["links"]
    assert page.evaluate("typeof window.__xss") == "undefined", "a hostile payload ran"


# -- the tests ----------------------------------------------------------------------------------


def test_the_page_is_served_with_a_strict_policy_and_no_inline_code(server: Server) -> None:
    for path in ("/", "/static/app.js", "/static/style.css"):
        response = httpx.get(server.base + path)
        assert response.status_code == 200, path
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "object-src 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    page_html = httpx.get(server.base + "/").text
    assert re.findall(r"<script\b[^>]*>", page_html) == ['<script type="module" src="/static/app.js">']
    assert "<style" not in page_html and " style=" not in page_html
    assert "http://" not in page_html and "https://" not in page_html, "the page must not load anything remote"
    assert "/" not in httpx.get(server.base + "/openapi.json").json()["paths"]
    static = REPO / "search_service" / "static"
    for script in static.glob("*.js"):
        source = script.read_text(encoding="utf-8")
        sinks = MARKUP_SINKS.findall(source)
        assert sinks == [], f"{script.name} writes markup: {sinks}"
    assert httpx.get(server.base + "/static/missing.js").status_code == 404


def test_typing_a_query_shows_highlighted_results_and_a_total(page: Page, server: Server) -> None:
    page.goto(server.url())
    expect_total(page, server.api("/search")["total"])
    box = page.get_by_role("combobox", name="Search articles")
    box.press_sequentially("oil", delay=40)

    # Search as you type: the last word is a prefix until the query is committed.
    expect(page).to_have_url(re.compile(r"[?&]q=oil(&|$)"))
    expect_total(page, server.api("/search", q="oil", prefix="true")["total"])
    marks = page.locator("#results .hit-title mark, #results .hit-snippet mark")
    expect(marks.first).to_be_visible()
    assert all(text.lower().startswith("oil") for text in marks.all_inner_texts())

    box.press("Escape")
    box.press("Enter")
    expected = server.api("/search", q="oil")
    expect_total(page, expected["total"])
    expect(page.locator("#status")).to_contain_text("for “oil”")
    titles = page.locator("#results .hit-title").all_inner_texts()
    assert len(titles) == len(expected["hits"])
    assert titles[0] == html.unescape(re.sub(r"</?mark>", "", expected["hits"][0]["highlights"]["title"]))
    assert page.locator("#results mark").count() > 0


def test_suggestions_work_with_the_keyboard(page: Page, server: Server) -> None:
    page.goto(server.url())
    settle(page)
    box = page.locator("#q")
    box.press_sequentially("ener", delay=30)
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(listbox).to_be_visible()
    suggested = server.api("/suggest", q="ener", limit=8)["suggestions"]
    expect(listbox.get_by_role("option")).to_have_count(len(suggested))
    expect(box).to_have_attribute("aria-expanded", "true")

    box.press("ArrowDown")
    first = listbox.get_by_role("option").first
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id") or "")
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("ener")

    box.press("ArrowDown")  # reopens the list
    expect(listbox).to_be_visible()
    box.press("ArrowDown")
    box.press("Enter")
    top = suggested[0]
    if top["kind"] in ("topic", "entity"):
        expect(page).to_have_url(re.compile(rf"[?&]{top['kind']}="))
        assert url_params(page)[top["kind"]] == [top["text"]]
        expect(box).to_have_value("")
        expect_total(page, server.api("/search", **{top["kind"]: top["text"]})["total"])
    else:
        expect(box).to_have_value(top["text"])
        expect_total(page, server.api("/search", q=top["text"])["total"])
    expect(listbox).to_be_hidden()


def test_a_topic_facet_filters_and_the_back_button_restores(page: Page, server: Server) -> None:
    page.goto(server.url(q="bank"))
    before = server.api("/search", q="bank")
    expect_total(page, before["total"])
    entities_before = facet_counts(page, "entities")
    assert entities_before == api_counts(before["facets"]["entities"])
    titles_before = page.locator("#results .hit-title").all_inner_texts()

    topic = next(v["value"] for v in before["facets"]["topics"] if v["count"] < before["total"])
    facet_checkbox(page, "topics", topic).click()
    expect(page).to_have_url(re.compile(r"[?&]topic="))
    assert url_params(page) == {"q": ["bank"], "topic": [topic]}
    after = server.api("/search", q="bank", topic=topic)
    expect_total(page, after["total"])
    assert after["total"] < before["total"]
    assert page.locator("#results .hit-title").all_inner_texts() != titles_before
    assert facet_counts(page, "entities") == api_counts(after["facets"]["entities"]) != entities_before
    expect(facet_checkbox(page, "topics", topic)).to_be_checked()
    expect(page.locator("#active-filters")).to_contain_text(f"Topic: {topic}")
    for hit in page.locator("#results .hit").all():
        expect(hit.locator(".chip-topic", has_text=re.compile(rf"^Topic: {re.escape(topic)}$"))).to_have_count(1)

    page.go_back()
    expect(page).to_have_url(server.url(q="bank"))
    expect_total(page, before["total"])
    expect(facet_checkbox(page, "topics", topic)).not_to_be_checked()
    assert facet_counts(page, "entities") == entities_before
    assert page.locator("#results .hit-title").all_inner_texts() == titles_before
    expect(page.locator("#active-filters")).to_be_hidden()

    page.go_forward()
    expect(page).to_have_url(re.compile(r"[?&]topic="))
    expect_total(page, after["total"])

    # A topic page is the same page with a filter, and its URL can be shared.
    page.goto(server.url(topic="energy"))
    expect_total(page, server.api("/search", topic="energy")["total"])
    expect(facet_checkbox(page, "topics", "energy")).to_be_checked()
    expect(page.locator("#q")).to_have_value("")


def test_the_date_histogram_filters_by_a_click_a_drag_and_the_keyboard(page: Page, server: Server) -> None:
    page.goto(server.url())
    settle(page)
    drawn = bars(page)
    assert len(drawn) > 2
    index, (label, count) = next((i, bar) for i, bar in enumerate(drawn) if bar[1] > 0)
    start = bucket_date(label)

    # A click on a bar filters to its bucket: published_after inclusive, published_before exclusive.
    page.locator("#histogram .bar").nth(index).click()
    expect(page).to_have_url(re.compile(r"published_before="))
    params = url_params(page)
    after, before = params["published_after"][0], params["published_before"][0]
    assert after == start.isoformat()
    expect_total(page, count)
    assert server.api("/search", published_after=after, published_before=before)["total"] == count
    low, high = date.fromisoformat(after), date.fromisoformat(before)
    assert all(low <= when.date() < high for when in hit_dates(page))
    expect(page.locator("#active-filters")).to_contain_text("Published:")

    # A drag across bars filters to the range they cover (the histogram zooms in on a range).
    page.goto(server.url(published_after="2026-01-01", published_before="2027-01-01"))
    settle(page)
    drawn = bars(page)
    assert len(drawn) >= 6
    first, last = 1, 5
    boxes = [page.locator("#histogram .bar").nth(i).bounding_box() for i in (first, last)]
    assert boxes[0] and boxes[1]
    page.mouse.move(boxes[0]["x"] + boxes[0]["width"] / 2, boxes[0]["y"] + boxes[0]["height"] / 2)
    page.mouse.down()
    page.mouse.move(boxes[1]["x"] + boxes[1]["width"] / 2, boxes[1]["y"] + boxes[1]["height"] / 2, steps=6)
    page.mouse.up()
    low = bucket_date(drawn[first][0])
    step = (bucket_date(drawn[last][0]) - bucket_date(drawn[last - 1][0])).days
    high = bucket_date(drawn[last][0]) + timedelta(days=step)
    expect(page).to_have_url(re.compile(rf"published_after={low.isoformat()}&published_before={high.isoformat()}"))
    expected = sum(c for _, c in drawn[first : last + 1])
    assert server.api("/search", published_after=low.isoformat(), published_before=high.isoformat())["total"] == (
        expected
    )
    expect_total(page, expected)

    # Keyboard: the bars are one tab stop; arrows move, Enter filters. Back restores the range.
    page.go_back()
    expect_total(page, server.api("/search", published_after="2026-01-01", published_before="2027-01-01")["total"])
    page.locator("#histogram .bar[tabindex='0']").focus()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    last_label, last_count = drawn[-1]
    expect(page).to_have_url(re.compile(rf"published_after={bucket_date(last_label).isoformat()}&"))
    expect_total(page, last_count)


def test_the_entity_typeahead_and_the_filters_work_from_the_keyboard(page: Page, server: Server) -> None:
    page.goto(server.url(q="bank"))
    expect_total(page, server.api("/search", q="bank")["total"])

    # The typeahead lists entities by prefix under the current query, with counts.
    finder = page.get_by_label("Find an entity")
    finder.press_sequentially("eu", delay=30)
    expected = server.api("/facets/entities", prefix="eu", size=20, q="bank")["values"]
    assert len(expected) >= 2
    expect(page.locator("#entities .facet-value")).to_have_text([v["value"] for v in expected])
    assert facet_counts(page, "entities") == api_counts(expected)
    finder.press("Enter")  # picks the first value
    entity = expected[0]["value"]
    expect(page).to_have_url(re.compile(r"[?&]entity="))
    assert url_params(page) == {"q": ["bank"], "entity": [entity]}
    expect_total(page, server.api("/search", q="bank", entity=entity)["total"])
    expect(facet_checkbox(page, "entities", entity)).to_be_checked()

    # Space on a facet checkbox filters, and the focus stays on that value after the redraw.
    topic = facet_counts(page, "topics")[0][0]
    facet_checkbox(page, "topics", topic).focus()
    page.keyboard.press("Space")
    expect(page).to_have_url(re.compile(r"[?&]topic="))
    expect_total(page, server.api("/search", q="bank", entity=entity, topic=topic)["total"])
    assert page.evaluate("document.activeElement.dataset.value") == topic

    # Active filters are buttons: Enter removes one and the focus moves to the next.
    page.get_by_role("button", name=f"Remove filter Topic: {topic}").focus()
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(r"[?&]topic="))
    expect_total(page, server.api("/search", q="bank", entity=entity)["total"])
    expect(page.get_by_role("button", name=f"Remove filter Entity: {entity}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url(q="bank"))
    expect(page.locator("#q")).to_be_focused()


def test_paging_and_sorting_keep_their_state_in_the_url(page: Page, server: Server) -> None:
    page.goto(server.url())
    first_page = server.api("/search")
    expect_total(page, first_page["total"])
    assert first_page["total"] > 10
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    settle(page)
    expect(page.locator("#pager [aria-current=page]")).to_have_text("2")
    second = [hit["slug"] for hit in server.api("/search", page=2)["hits"]]
    assert len(page.locator("#results .hit").all()) == len(second)

    page.get_by_label("Sort").select_option("oldest")
    expect(page).to_have_url(re.compile(r"sort=oldest"))
    settle(page)
    assert "page" not in url_params(page)
    oldest = server.api("/search", sort="oldest")["hits"][0]
    first_date = page.locator("#results .hit time").first.get_attribute("datetime")
    assert first_date == oldest["published_at"]
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    expect(page.get_by_label("Sort")).to_have_value("newest")


def test_hostile_records_render_as_inert_text(browser: Browser, server: Server) -> None:
    # bypass_csp: prove the page's own escaping makes the payloads inert, not just the policy.
    page, watch = open_page(browser, bypass_csp=True)
    try:
        page.goto(server.url(q="zyzzyva"))
        expect_total(page, server.api("/search", q="zyzzyva")["total"])
        title = page.locator("#results .hit-title").first
        expect(title).to_have_text(CANARY_TITLE)
        expect(title.locator("mark")).to_have_text("Zyzzyva")
        expect(page.locator("#results .hit-snippet").first).to_contain_text("window.__xss=4 [click](javascript:")
        expect(page.locator("#topics")).to_contain_text(CANARY_TOPIC)
        expect(page.locator("#entities")).to_contain_text(CANARY_ENTITY)
        expect(page.locator("#results .chip-entity", has_text=CANARY_ENTITY)).to_have_count(1)
        assert_inert(page)

        facet_checkbox(page, "topics", CANARY_TOPIC).click()
        expect(page).to_have_url(re.compile(r"[?&]topic=%3Cimg"))
        assert url_params(page)["topic"] == [CANARY_TOPIC]
        expect(page.locator("#active-filters")).to_contain_text(f"Topic: {CANARY_TOPIC}")
        settle(page)
        assert_inert(page)

        page.goto(server.url(q="alert"))
        settle(page)
        expect(page.locator("#results .hit-title", has_text=BAD_TITLE)).to_have_count(1)
        assert_inert(page)

        # Topic and entity pages for markup values: the values come back as text, in chips and lists.
        page.goto(server.url(topic=BAD_TOPIC))
        expect_total(page, server.api("/search", topic=BAD_TOPIC)["total"])
        expect(page.locator("#active-filters")).to_contain_text(f"Topic: {BAD_TOPIC}")
        expect(facet_checkbox(page, "topics", BAD_TOPIC)).to_be_checked()
        page.goto(server.url(entity=BAD_ENTITY))
        expect_total(page, server.api("/search", entity=BAD_ENTITY)["total"])
        row = page.locator("#entities .facet-item", has_text=BAD_ENTITY)
        row.hover()
        page.locator("#results .chip-entity", has_text=BAD_ENTITY).hover()
        assert_inert(page)

        # Suggestions and the entity typeahead show markup values as text too.
        page.goto(server.url())
        settle(page)
        page.locator("#q").press_sequentially("<", delay=30)
        option = page.locator("#suggestions [role=option]", has_text=BAD_ENTITY)
        expect(option).to_be_visible()
        option.hover()
        option.click()
        expect(page).to_have_url(re.compile(r"[?&]entity=%3Cb"))
        settle(page)
        page.locator("#entity-filter").press_sequentially("<b", delay=30)
        expect(page.locator("#entities .facet-value").first).to_have_text(BAD_ENTITY)
        assert_inert(page)
        watch.check(page)
    finally:
        page.context.close()


def test_corrections_and_the_all_word_count_are_shown_and_can_be_followed(page: Page, server: Server) -> None:
    corrected = server.api("/search", q="oil prisces")
    assert corrected["searched_for"] == "oil prices" and 0 < corrected["all_words"] < 5, corrected
    page.goto(server.url(q="oil prisces"))
    expect_total(page, corrected["total"])
    spelling = page.locator("#spelling")
    expect(spelling).to_have_text("Showing results for oil prices. Search instead for oil prisces.")
    all_words = corrected["all_words"]
    expect(page.locator("#notice")).to_contain_text(f"{all_words} article{'s' if all_words > 1 else ''} contain")
    # The first hits are the articles holding every word, as the API ranks them.
    titles = page.locator("#results .hit-title").all_inner_texts()
    expected = [html.unescape(re.sub(r"</?mark>", "", hit["highlights"]["title"])) for hit in corrected["hits"]]
    assert titles[:all_words] == expected[:all_words]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page-corrections.png"))

    spelling.get_by_role("link", name="oil prisces").click()
    expect(page).to_have_url(re.compile(r"[?&]typos=false(&|$)"))
    exact = server.api("/search", q="oil prisces", typos="false")
    expect_total(page, exact["total"])
    # Searched as typed, the query finds little: the correction is offered instead.
    assert exact["corrections"] == [] and exact["did_you_mean"] == "oil prices"
    expect(spelling).to_have_text("Did you mean oil prices?")

    assert server.api("/search", q="oill")["did_you_mean"] == "oil"
    page.goto(server.url(q="oill"))
    settle(page)
    expect(spelling).to_have_text("Did you mean oil?")
    spelling.get_by_role("link", name="oil").click()
    expect(page).to_have_url(re.compile(r"[?&]q=oil(&|$)"))
    expect_total(page, server.api("/search", q="oil")["total"])
    expect(page.locator("#q")).to_have_value("oil")


def test_the_api_docs_render_with_no_other_host_reachable(page: Page, server: Server) -> None:
    """/docs is Swagger UI from the app itself: with every other host cut off, it still draws the API."""
    outside: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(server.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server.base}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("News search")
    expect(page.locator(".opblock-summary-path", has_text=re.compile(r"^/search$"))).to_be_visible()
    assert outside == []


def test_screenshots_at_desktop_and_phone_width(browser: Browser, server: Server) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page, watch = open_page(browser, viewport)
        try:
            page.goto(server.url(q="rates"))
            expect_total(page, server.api("/search", q="rates")["total"])
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "horizontal scroll"
            sidebar, toggle = page.locator("#sidebar"), page.locator("#filters-toggle")
            if name == "phone":
                expect(sidebar).to_be_hidden()
                toggle.click()
                expect(sidebar).to_be_visible()
                expect(toggle).to_have_attribute("aria-expanded", "true")
                toggle.click()
            else:
                expect(sidebar).to_be_visible()
                expect(toggle).to_be_hidden()
            path = ARTIFACTS / f"search-page-{name}.png"
            page.screenshot(path=str(path))
            assert path.stat().st_size > 10_000
            watch.check(page)
        finally:
            page.context.close()


def test_estimated_counts_are_shown_as_estimates(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With [counting] set so low that a broad query is counted from a sample, the page marks every
    estimated facet count "~" with its interval, and says the counts are approximate."""
    from conftest import config_with

    root = tmp_path_factory.mktemp("page-sampled")
    config = config_with(root, "counting", exact_up_to=1, sample_size=8, date_sample_size=8)
    build_index(root / "index", [SAMPLE, BAD, write_jsonl(root / "canary.jsonl", [canary_record()])], config)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        app = create_app(Settings(index_dir=root / "index", config_path=Path(config.path), search_budget_ms=60_000))
    with serve_in_thread(app) as base:
        server = Server(base)
        expected = server.api("/search", q="the")
        assert expected["exhaustive"] == {"total": True, "facets": False}
        page, watch = open_page(browser)
        page.goto(server.url(q="the"))
        expect_total(page, expected["total"])
        expect(page.locator("#status .approximate")).to_have_text(" · approximate counts")
        estimates = page.locator("#topics .facet-count.is-estimate")
        shown = [v for v in expected["facets"]["topics"] if "interval" in v]
        expect(estimates).to_have_count(len(shown))
        first = shown[0]
        assert estimates.first.inner_text() == f"~{first['count']:,}"
        assert estimates.first.get_attribute("title") == (
            f"estimated: between {first['interval'][0]:,} and {first['interval'][1]:,}"
        )
        watch.check(page)
        page.context.close()
