"""The other endpoints (articles, related, facet values, suggest, health, ready) and parameter errors."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import REUTERS_DOCUMENTS

Record = dict[str, Any]

BAHIA_COCOA = "reuters-1-bahia-cocoa-review"


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def assert_error(response: Any, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]["message"]


@pytest.fixture(scope="module")
def by_slug(reuters_records: list[Record]) -> dict[str, Record]:
    return {record["slug"]: record for record in reuters_records}


# -- /articles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    [
        BAHIA_COCOA,
        "reuters-2-standard-oil-srd-to-form-financial-unit",
        "reuters-15370-hospital-corp-of-america-hca-gets-merger-bid",
        "reuters-4658-opec-deliberately-under-15-8-mln-barrel-ceiling-to-defend-price-subroto",
    ],
)
def test_article_is_returned_as_imported(reuters_client: Any, by_slug: dict[str, Record], slug: str) -> None:
    response = reuters_client.get(f"/articles/{slug}")
    assert response.status_code == 200, response.text
    article = response.json()
    record = by_slug[slug]
    assert set(article) == set(record)
    for key in ("slug", "title", "summary", "body_md", "url", "canonical_source", "lang", "entities", "alternates"):
        assert article[key] == record[key], key
    assert article["topics"] == list(dict.fromkeys(record["topics"]))
    for key in ("published_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", article[key]), article[key]
        assert utc(article[key]) == utc(record[key])


def test_article_body_md_keeps_the_original_markdown_and_tickers(reuters_client: Any) -> None:
    article = reuters_client.get("/articles/reuters-2-standard-oil-srd-to-form-financial-unit").json()
    assert article["body_md"].startswith("# STANDARD OIL <SRD> TO FORM FINANCIAL UNIT\n\n")
    assert "<BP>" in article["body_md"]


@pytest.mark.parametrize(
    "slug", ["no-such-article", "reuters-1-bahia-cocoa-revie", "REUTERS-1-BAHIA-COCOA-REVIEW", "x" * 200]
)
def test_unknown_slug_is_a_404_with_the_error_shape(reuters_client: Any, slug: str) -> None:
    message = assert_error(reuters_client.get(f"/articles/{slug}"), 404, "not_found")
    assert slug[:40] in message


def test_overlong_slug_is_rejected_not_crashed(reuters_client: Any) -> None:
    response = reuters_client.get(f"/articles/{'x' * 201}")
    assert response.status_code in (404, 422)
    assert_error(response, response.status_code)


# -- /articles/{slug}/related -------------------------------------------------------------------


def test_related_never_contains_the_article_itself(reuters_client: Any, reuters_records: list[Record]) -> None:
    for record in reuters_records[:: len(reuters_records) // 25]:
        response = reuters_client.get(f"/articles/{record['slug']}/related", params={"limit": 10})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["slug"] == record["slug"]
        related = [hit["slug"] for hit in body["related"]]
        assert record["slug"] not in related
        assert len(related) == len(set(related)) <= 10


def test_related_articles_of_a_cocoa_story_are_about_cocoa(reuters_client: Any, by_slug: dict[str, Record]) -> None:
    related = reuters_client.get(f"/articles/{BAHIA_COCOA}/related", params={"limit": 10}).json()["related"]
    assert len(related) == 10
    about_cocoa = [
        hit for hit in related if "cocoa" in (by_slug[hit["slug"]]["title"] + by_slug[hit["slug"]]["body_md"]).lower()
    ]
    assert len(about_cocoa) >= 7, [hit["title"] for hit in related]
    scores = [hit["score"] for hit in related]
    assert scores == sorted(scores, reverse=True)
    for hit in related:
        record = by_slug[hit["slug"]]
        assert hit["title"] == record["title"]
        assert hit["url"] == record["url"]
        assert utc(hit["published_at"]) == utc(record["published_at"])


def test_related_respects_limit_and_unknown_slug_is_404(reuters_client: Any) -> None:
    assert len(reuters_client.get(f"/articles/{BAHIA_COCOA}/related").json()["related"]) == 5
    assert len(reuters_client.get(f"/articles/{BAHIA_COCOA}/related", params={"limit": 2}).json()["related"]) == 2
    assert_error(reuters_client.get("/articles/no-such-article/related"), 404, "not_found")
    assert_error(reuters_client.get(f"/articles/{BAHIA_COCOA}/related", params={"limit": 0}), 422)
    assert_error(reuters_client.get(f"/articles/{BAHIA_COCOA}/related", params={"limit": 51}), 422)


# -- /facets/{facet} ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["ja", "JA", "Ja", " ja "])
def test_entity_typeahead_is_a_case_insensitive_prefix_among_crude_articles(
    reuters_client: Any, reuters_records: list[Record], prefix: str
) -> None:
    response = reuters_client.get("/facets/entities", params={"prefix": prefix, "topic": "crude", "size": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["facet"] == "entities"
    counts: Counter[str] = Counter()
    for record in reuters_records:
        if "crude" in record["topics"]:
            counts.update(e for e in set(record["entities"]) if e.casefold().startswith("ja"))
    expected = [{"value": v, "count": n} for v, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    assert body["values"] == expected
    assert body["values"][0]["value"] == "Japan"


def test_topic_values_under_an_entity_filter_match_jsonl(reuters_client: Any, reuters_records: list[Record]) -> None:
    body = reuters_client.get("/facets/topics", params={"entity": "Japan", "size": 15}).json()
    counts = Counter(t for r in reuters_records if "Japan" in r["entities"] for t in set(r["topics"]))
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:15]
    assert body["values"] == [{"value": v, "count": n} for v, n in expected]


def test_facet_values_ignore_their_own_filter_and_respect_q(reuters_client: Any) -> None:
    unfiltered = reuters_client.get("/facets/topics", params={"size": 5}).json()["values"]
    own = reuters_client.get("/facets/topics", params={"size": 5, "topic": "cocoa"}).json()["values"]
    assert own[:5] == unfiltered
    with_q = reuters_client.get("/facets/topics", params={"q": "cocoa", "size": 1}).json()["values"]
    assert with_q[0]["value"] == "cocoa"


def test_facet_prefix_without_matches_is_empty(reuters_client: Any) -> None:
    body = reuters_client.get("/facets/entities", params={"prefix": "zzzz"}).json()
    assert body["values"] == []


def test_unknown_facet_is_a_404(reuters_client: Any) -> None:
    message = assert_error(reuters_client.get("/facets/nope"), 404, "not_found")
    assert "nope" in message
    assert_error(reuters_client.get("/facets/published_at"), 404, "not_found")


# -- /suggest, /health, /ready ------------------------------------------------------------------


def test_suggest_completes_opec(reuters_client: Any) -> None:
    response = reuters_client.get("/suggest", params={"q": "opec"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["q"] == "opec"
    texts = [s["text"].casefold() for s in body["suggestions"]]
    assert texts and all(t.startswith("opec") or " opec" in f" {t}" for t in texts)
    assert all(s["count"] > 0 and s["kind"] for s in body["suggestions"])


def test_suggest_completes_a_partial_word_and_facet_values(reuters_client: Any) -> None:
    texts = [s["text"] for s in reuters_client.get("/suggest", params={"q": "ope"}).json()["suggestions"]]
    assert "opec" in [t.casefold() for t in texts]
    entities = reuters_client.get("/suggest", params={"q": "west ger"}).json()["suggestions"]
    assert {"text": "West Germany", "kind": "entity", "count": 566} in entities


@pytest.mark.parametrize("q", ["", " ", "opec ", "zzzzzz", "<script>", "(", "\\", "[", "可可"])
def test_suggest_never_fails(reuters_client: Any, q: str) -> None:
    response = reuters_client.get("/suggest", params={"q": q, "limit": 3})
    assert response.status_code == 200, response.text
    assert len(response.json()["suggestions"]) <= 3


def test_suggest_limit(reuters_client: Any) -> None:
    assert len(reuters_client.get("/suggest", params={"q": "s", "limit": 4}).json()["suggestions"]) <= 4
    assert len(reuters_client.get("/suggest", params={"q": "st", "limit": 4}).json()["suggestions"]) == 4
    assert_error(reuters_client.get("/suggest", params={"q": "st", "limit": 11}), 422)


def test_health(reuters_client: Any) -> None:
    response = reuters_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_the_whole_corpus(reuters_client: Any, reuters_index: Any) -> None:
    response = reuters_client.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["documents"] == REUTERS_DOCUMENTS
    assert body["generation"] == reuters_index.report.generation
    assert body["config_version"] == reuters_index.config.fingerprint


def test_ready_is_503_without_an_index(tmp_path: Any) -> None:
    from conftest import api_client

    with api_client(tmp_path / "empty") as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "index_not_ready")
        assert_error(client.get("/search"), 503, "index_not_ready")


def test_unknown_route_and_method_use_the_error_shape(reuters_client: Any) -> None:
    assert_error(reuters_client.get("/nope"), 404, "not_found")
    assert_error(reuters_client.post("/search"), 405, "method_not_allowed")


def test_admin_reload_is_disabled_without_a_key(reuters_client: Any) -> None:
    assert_error(reuters_client.post("/admin/reload"), 404, "not_found")


# -- parameter errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1001&per_page=10", "page"),
        ("page=101&per_page=100", "page"),
        ("sort=bogus", "sort"),
        ("sort=", "sort"),
        ("facets=bogus", "facets"),
        ("facets=topics,bogus", "facets"),
        ("facet_size=0", "facet_size"),
        ("facet_size=101", "facet_size"),
        ("date_interval=hour", "date_interval"),
        ("published_after=garbage", "published_after"),
        ("published_after=1987-02-30", "published_after"),
        ("published_before=1987-13-01", "published_before"),
        ("published_before=26-FEB-1987", "published_before"),
        ("prefix=maybe", "prefix"),
        ("typos=2", "typos"),
        ("q=" + "a" * 1001, "q"),
        ("topic=" + "&topic=".join(f"t{i}" for i in range(51)), "topic"),
    ],
)
def test_invalid_parameter_is_a_422_naming_the_parameter(reuters_client: Any, query: str, parameter: str) -> None:
    message = assert_error(reuters_client.get(f"/search?{query}"), 422, "invalid_parameter")
    assert message.startswith(f"{parameter}:"), message


def test_deepest_page_boundary(reuters_client: Any) -> None:
    assert reuters_client.get("/search?page=1000&per_page=10&facets=").status_code == 200
    assert_error(reuters_client.get("/search?page=1001&per_page=10"), 422, "invalid_parameter")


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/facets/topics?published_after=garbage", "published_after"),
        ("/facets/topics?size=0", "size"),
        ("/suggest?q=" + "a" * 201, "q"),
    ],
)
def test_invalid_parameters_on_other_endpoints(reuters_client: Any, url: str, parameter: str) -> None:
    message = assert_error(reuters_client.get(url), 422, "invalid_parameter")
    assert message.startswith(f"{parameter}:"), message


@pytest.mark.parametrize(
    ("url", "expected_total"),
    [
        ("/search?facets=&published_after=0001-01-01", REUTERS_DOCUMENTS),
        ("/search?facets=&published_before=9999-12-31", REUTERS_DOCUMENTS),
        ("/search?facets=&published_before=1000-01-01T00:00:00%2B05:00", 0),
        ("/facets/topics?published_after=0001-01-01", None),
    ],
)
def test_date_outside_the_indexable_range_is_a_422_or_unbounded_never_a_500(
    reuters_client: Any, url: str, expected_total: int | None
) -> None:
    """Either answer is fine: a 422 naming the parameter, or the bound clamped (0001 = since ever)."""
    from fastapi.testclient import TestClient

    # The session client's app, without re-raising server errors: we want the HTTP answer.
    client = TestClient(reuters_client.app, raise_server_exceptions=False)
    response = client.get(url)
    if response.status_code == 200:
        if expected_total is not None:
            assert response.json()["total"] == expected_total
        return
    parameter = next(p.split("=")[0] for p in url.split("?")[1].split("&") if p.startswith("published"))
    message = assert_error(response, 422, "invalid_parameter")
    assert message.startswith(f"{parameter}:"), message
