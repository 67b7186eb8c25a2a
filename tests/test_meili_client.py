"""The Meilisearch API driven by the real PyPI `meilisearch` client against a served app over a
real index: search (filters, facets, sort, highlight, crop, paging), documents through durable
tasks, synonyms, settings, and every error code the clients parse."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import meilisearch
import pytest
from conftest import SAMPLE, build_index, read_jsonl, serve_in_thread
from meilisearch.errors import MeilisearchApiError

from search_service.http.app import create_app
from search_service.settings import Settings

KEY = "master-key"
ORIGIN = "http://pages.example"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index_dir = tmp_path_factory.mktemp("meili") / "index"
    build_index(index_dir, [SAMPLE])
    settings = Settings(
        index_dir=index_dir, admin_key=KEY, search_budget_ms=60_000, cors_origins=[ORIGIN], max_write_mb=0.5
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return read_jsonl(SAMPLE)


@pytest.fixture
def client(served: str) -> meilisearch.Client:
    return meilisearch.Client(served + "/meili", KEY)


@pytest.fixture
def index(client: meilisearch.Client) -> Any:
    return client.index("articles")


def seconds(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


def error_of(call: Any) -> MeilisearchApiError:
    with pytest.raises(MeilisearchApiError) as caught:
        call()
    return caught.value


def new_article(records: list[dict[str, Any]], slug: str, **changes: Any) -> dict[str, Any]:
    return {**records[0], "slug": slug, **changes}


# -- search -----------------------------------------------------------------------------------------


def test_search_counts_and_facets_equal_search_for_the_same_query_and_filter(served, index, records):
    found = index.search("oil", {"filter": "topics = ENERGY", "facets": ["topics", "published_at"], "limit": 1})
    plain = httpx.get(
        served + "/search", params={"q": "oil", "topic": "energy", "prefix": "true", "facets": "topics"}
    ).json()
    assert found["estimatedTotalHits"] == plain["total"] > 0
    assert len(found["hits"]) == 1
    # Over the whole filtered set (not the page), and conjunctive: only energy articles counted.
    assert found["facetDistribution"]["topics"]["energy"] == plain["total"]
    energy = [r for r in records if "energy" in r["topics"]]
    stats = index.search("", {"filter": "topics = energy", "facets": ["published_at"], "limit": 0})["facetStats"]
    assert stats["published_at"] == {
        "min": min(seconds(r["published_at"]) for r in energy),
        "max": max(seconds(r["published_at"]) for r in energy),
    }


def test_a_refined_facets_disjunctive_counts_equal_search_s(served, index):
    """instant-meilisearch asks once more without a facet's own refinement: /search's disjunctive counts."""
    plain = httpx.get(served + "/search", params={"topic": ["energy", "climate"], "facets": "topics"}).json()
    disjunctive = index.search("", {"facets": ["topics"], "limit": 0})["facetDistribution"]["topics"]
    expected = {v["value"]: v["count"] for v in plain["facets"]["topics"]}
    assert {k: disjunctive[k] for k in expected} == expected
    main = index.search("", {"filter": [["topics = energy", "topics = climate"]], "limit": 0})
    assert main["estimatedTotalHits"] == plain["total"]


@pytest.mark.parametrize(
    ("expression", "oracle"),
    [
        ("topics = Energy OR topics = 'markets'", lambda r: {"energy", "markets"} & set(r["topics"])),
        ("NOT topics = energy", lambda r: "energy" not in r["topics"]),
        ("topics != energy AND lang = EN", lambda r: "energy" not in r["topics"] and r["lang"] == "en"),
        (
            'topics IN [energy, climate] AND NOT lang IN ["de", fr]',
            lambda r: {"energy", "climate"} & set(r["topics"]) and r["lang"] not in ("de", "fr"),
        ),
        ("(lang = de OR lang = fr) AND topics EXISTS", lambda r: r["lang"] in ("de", "fr")),
        ('"entities" = "bank of england"', lambda r: "Bank of England" in r["entities"]),
        ("published_at >= 1781768162", lambda r: seconds(r["published_at"]) >= 1781768162),
        ("published_at < 2026-06-18T09:36:02Z", lambda r: seconds(r["published_at"]) < 1781775362),
        ("published_at 1772726561 TO 1781768162", lambda r: 1772726561 <= seconds(r["published_at"]) <= 1781768162),
        ("topics IS EMPTY OR lang IS NULL", lambda r: False),
        ("topics IS NOT EMPTY", lambda r: True),
    ],
)
def test_filter_grammar_matches_the_articles_it_names(index, records, expression, oracle):
    found = index.search("", {"filter": expression, "limit": 100, "attributesToRetrieve": ["slug"]})
    assert {h["slug"] for h in found["hits"]} == {r["slug"] for r in records if oracle(r)}


def test_filter_arrays_and_inner_arrays_or(index, records):
    found = index.search("", {"filter": [["topics = energy", "topics = climate"], "lang = en"], "limit": 100})
    expected = {r["slug"] for r in records if {"energy", "climate"} & set(r["topics"]) and r["lang"] == "en"}
    assert {h["slug"] for h in found["hits"]} == expected


def test_sort_paging_and_retrieve(index, records):
    newest = sorted(records, key=lambda r: datetime.fromisoformat(r["published_at"]), reverse=True)
    page = index.search(
        "", {"sort": ["published_at:desc"], "hitsPerPage": 7, "page": 2, "attributesToRetrieve": ["slug"]}
    )
    assert [h["slug"] for h in page["hits"]] == [r["slug"] for r in newest[7:14]]
    assert (page["totalHits"], page["totalPages"], page["page"], page["hitsPerPage"]) == (40, 6, 2, 7)
    assert set(page["hits"][0]) == {"slug"}
    odd = index.search("", {"sort": ["published_at:asc"], "offset": 3, "limit": 5, "attributesToRetrieve": ["slug"]})
    assert [h["slug"] for h in odd["hits"]] == [r["slug"] for r in reversed(newest)][3:8]
    assert (odd["offset"], odd["limit"], odd["estimatedTotalHits"]) == (3, 5, 40)
    full = index.search("", {"limit": 1})["hits"][0]
    assert set(full) >= {"slug", "title", "body_md", "updated_at", "alternates", "canonical_source"}


def test_highlight_and_crop_with_custom_tags(index):
    found = index.search(
        "inflation",
        {
            "attributesToHighlight": ["*"],
            "attributesToCrop": ["summary:6"],
            "highlightPreTag": "<b>",
            "highlightPostTag": "</b>",
            "cropMarker": "[…]",
            "limit": 3,
        },
    )
    assert found["hits"]
    for hit in found["hits"]:
        formatted = hit["_formatted"]
        assert set(formatted) == set(hit) - {"_formatted"}
        text = json.dumps(formatted)
        assert "<b>" in text.lower() and "</b>" in text
        assert len(formatted["summary"].replace("<b>", "").replace("</b>", "").replace("[…]", "").split()) <= 6


def test_multi_search_names_each_index_and_facet_search_finds_values(client, index):
    results = client.multi_search(
        [{"indexUid": "articles", "q": "rates", "limit": 2}, {"indexUid": "articles", "limit": 0}]
    )
    assert [r["indexUid"] for r in results["results"]] == ["articles", "articles"]
    assert results["results"][1]["estimatedTotalHits"] == 40
    hits = index.facet_search("topics", "ener")["facetHits"]
    assert hits and hits[0]["value"] == "energy" and hits[0]["count"] == 8


def test_public_search_works_without_a_key(served):
    # A client built without a key sends `Authorization: Bearer None`.
    assert meilisearch.Client(served + "/meili").index("articles").search("oil")["hits"]


# -- documents and tasks ------------------------------------------------------------------------------


def test_documents_added_updated_fetched_and_deleted_through_tasks(client, index, records):
    docs = [new_article(records, f"meili-doc-{i}", title=f"Quokka sighting {i}") for i in range(3)]
    task = client.wait_for_task(index.add_documents(docs).task_uid)
    assert task.status == "succeeded" and task.details == {"receivedDocuments": 3, "indexedDocuments": 3}
    assert task.type == "documentAdditionOrUpdate" and task.finished_at >= task.started_at >= task.enqueued_at
    assert index.search("quokka")["estimatedTotalHits"] == 3
    assert index.get_document("meili-doc-1").title == "Quokka sighting 1"

    later = "2030-01-01T00:00:00Z"
    merged = client.wait_for_task(
        index.update_documents([{"slug": "meili-doc-1", "title": "Wombat", "updated_at": later}]).task_uid
    )
    assert merged.status == "succeeded"
    stored = index.get_document("meili-doc-1")
    assert (stored.title, stored.summary) == ("Wombat", records[0]["summary"])

    fetched = index.get_documents({"filter": "slug IN [meili-doc-0, meili-doc-2]", "fields": ["slug", "title"]})
    assert fetched.total == 2 and {d.slug for d in fetched.results} == {"meili-doc-0", "meili-doc-2"}

    assert client.wait_for_task(index.delete_document("meili-doc-0").task_uid).details["deletedDocuments"] == 1
    assert client.wait_for_task(index.delete_documents(["meili-doc-1"]).task_uid).details["deletedDocuments"] == 1
    by_filter = client.wait_for_task(index.delete_documents(filter="slug = meili-doc-2").task_uid)
    assert by_filter.details == {"providedIds": 0, "deletedDocuments": 1, "originalFilter": "slug = meili-doc-2"}
    assert index.search("quokka wombat", {"matchingStrategy": "last"})["estimatedTotalHits"] == 0
    assert index.get_stats().number_of_documents == 40


def test_an_invalid_article_fails_its_task_and_nothing_is_stored(client, index, records):
    good = new_article(records, "meili-good-one")
    bad = {**new_article(records, "meili-bad-one"), "url": "not a url"}
    task = client.wait_for_task(index.add_documents([good, bad]).task_uid)
    assert task.status == "failed"
    assert task.error["code"] == "invalid_document_fields" and "meili-bad-one" in task.error["message"]
    assert "url" in task.error["message"]
    assert error_of(lambda: index.get_document("meili-good-one")).code == "document_not_found"
    listed = client.get_tasks({"statuses": ["failed"]}).results
    assert task.uid in [t.uid for t in listed]


def test_ndjson_documents_and_strapi_s_extra_key(served, client, records):
    doc = {**new_article(records, "meili-ndjson"), "_meilisearch_id": "article-7"}
    body = (json.dumps(doc) + "\n").encode()
    response = httpx.post(
        served + "/meili/indexes/articles/documents?primaryKey=_meilisearch_id",
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202 and set(response.json()) == {
        "taskUid",
        "indexUid",
        "status",
        "type",
        "enqueuedAt",
    }
    assert client.wait_for_task(response.json()["taskUid"]).status == "succeeded"
    client.wait_for_task(client.index("articles").delete_document("meili-ndjson").task_uid)


def test_synonyms_update_and_apply(client, index):
    assert index.search("kangaroo")["estimatedTotalHits"] == 0
    task = client.wait_for_task(index.update_synonyms({"kangaroo": ["opec"]}).task_uid)
    assert task.status == "succeeded" and index.get_synonyms() == {"kangaroo": ["opec"]}
    assert index.search("kangaroo")["estimatedTotalHits"] > 0
    client.wait_for_task(index.reset_synonyms().task_uid)
    assert index.get_synonyms() == {} and index.search("kangaroo")["estimatedTotalHits"] == 0


def test_settings_accept_what_the_schema_supports_and_refuse_the_rest(client, index):
    assert client.wait_for_task(index.update_filterable_attributes(["topics", "lang"]).task_uid).status == "succeeded"
    assert "published_at" in index.get_filterable_attributes()
    assert (
        error_of(lambda: index.update_filterable_attributes(["price"])).code == "invalid_settings_filterable_attributes"
    )
    assert error_of(lambda: index.update_ranking_rules(["typo"])).code == "invalid_settings_ranking_rules"
    assert index.get_settings()["sortableAttributes"] == ["published_at", "updated_at"]


def test_the_one_index(client):
    assert [i.uid for i in client.get_indexes()["results"]] == ["articles"]
    assert client.get_index("articles").primary_key == "slug"
    created = client.wait_for_task(client.create_index("books").task_uid)
    assert created.status == "failed" and created.error["code"] == "index_creation_failed"
    assert client.health() == {"status": "available"}


# -- errors ------------------------------------------------------------------------------------------


def test_error_codes(served, client, index):
    bad_filter = error_of(lambda: index.search("", {"filter": "topics = energy AND"}))
    assert (bad_filter.code, bad_filter.status_code, bad_filter.type) == (
        "invalid_search_filter",
        400,
        "invalid_request",
    )
    assert "20:" in bad_filter.message and bad_filter.link.endswith("#invalid_search_filter")
    assert error_of(lambda: index.search("", {"filter": "price > 3"})).code == "invalid_search_filter"
    assert error_of(lambda: client.index("books").search("x")).code == "index_not_found"
    assert error_of(lambda: index.get_document("no-such-slug")).code == "document_not_found"
    assert error_of(lambda: client.get_task(987654)).code == "task_not_found"
    wrong = meilisearch.Client(served + "/meili", "wrong").index("articles")
    refused = error_of(lambda: wrong.add_documents([{"slug": "x"}]))
    assert (refused.code, refused.status_code) == ("invalid_api_key", 403)
    url = served + "/meili/indexes/articles/documents"
    missing = httpx.post(url, json=[])
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_authorization_header")
    auth = {"Authorization": f"Bearer {KEY}"}
    csv = httpx.post(url, content=b"slug\nx\n", headers={**auth, "Content-Type": "text/csv"})
    assert (csv.status_code, csv.json()["code"]) == (415, "invalid_content_type")
    large = httpx.post(url, content=b"[" + b" " * 600_000 + b"]", headers={**auth, "Content-Type": "application/json"})
    assert (large.status_code, large.json()["code"]) == (413, "payload_too_large")
    unknown = httpx.get(served + "/meili/nowhere")
    assert unknown.status_code == 404 and set(unknown.json()) == {"message", "code", "type", "link"}
    for response in (csv, large, unknown, missing):
        assert "detail" not in response.json() and "error" not in response.json()


def test_cors_preflight_for_the_clients_headers(served):
    response = httpx.options(
        served + "/meili/multi-search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,x-meilisearch-client",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]


def test_a_public_key_makes_search_need_it_and_never_write(tmp_path: Path):
    from conftest import api_client

    build_index(tmp_path / "index", [SAMPLE])
    with api_client(tmp_path / "index", admin_key=KEY, public_key="reader") as http:
        search = "/meili/indexes/articles/search"
        assert http.post(search, json={"q": "oil"}).json()["code"] == "missing_authorization_header"
        assert http.post(search, json={}, headers={"Authorization": "Bearer None"}).status_code == 403
        assert http.post(search, json={}, headers={"Authorization": "Bearer reader"}).status_code == 200
        write = http.post("/meili/indexes/articles/documents", json=[], headers={"Authorization": "Bearer reader"})
        assert (write.status_code, write.json()["code"]) == (403, "invalid_api_key")


def test_attributes_to_search_on_and_matching_strategy(index, records):
    titled = index.search("rates", {"attributesToSearchOn": ["title"], "limit": 100, "attributesToRetrieve": ["slug"]})
    anywhere = index.search("rates", {"limit": 100})
    assert 0 < titled["estimatedTotalHits"] < anywhere["estimatedTotalHits"]
    in_title = {r["slug"] for r in records if "rate" in r["title"].lower()}
    assert {h["slug"] for h in titled["hits"]} <= in_title
    assert index.search("rates zzyzzx", {"matchingStrategy": "all"})["estimatedTotalHits"] == 0
    assert index.search("rates zzyzzx", {"matchingStrategy": "last"})["estimatedTotalHits"] > 0
    refused = error_of(lambda: index.search("x", {"attributesToSearchOn": ["url"]}))
    assert refused.code == "invalid_search_attributes_to_search_on"


def test_tenant_tokens_restrict_search_to_their_rules(tmp_path: Path, served, records):
    import time

    import jwt
    from conftest import api_client

    build_index(tmp_path / "index", [SAMPLE])
    energy = sum(1 for r in records if "energy" in r["topics"])
    rules = {"articles": {"filter": "topics = energy"}}
    token = jwt.encode({"searchRules": rules, "exp": int(time.time()) + 600}, "reader", algorithm="HS256")
    expired = jwt.encode({"searchRules": rules, "exp": int(time.time()) - 10}, "reader", algorithm="HS256")
    forged = jwt.encode({"searchRules": {"*": {}}}, "not-a-key", algorithm="HS256")
    with api_client(tmp_path / "index", admin_key=KEY, public_key="reader") as http:
        search = "/meili/indexes/articles/search"

        def total(key: str, body: dict) -> int:
            response = http.post(search, json=body, headers={"Authorization": f"Bearer {key}"})
            return response.json().get("estimatedTotalHits", response.json().get("code"))

        assert total(token, {}) == energy
        assert total(token, {"filter": "topics != energy"}) == 0  # the token's filter always applies
        assert total(token, {"filter": [["lang = en", "lang = de"]]}) <= energy
        assert total(expired, {}) == "invalid_api_key"
        assert total(forged, {}) == "invalid_api_key"
        assert total("reader", {}) == 40
    # The client sends a token as its key; one signed with the admin key works where there is no public key.
    admin_signed = jwt.encode({"searchRules": rules}, KEY, algorithm="HS256")
    assert (
        meilisearch.Client(served + "/meili", admin_signed).index("articles").search("")["estimatedTotalHits"] == energy
    )


def test_a_task_behind_a_rebuild_is_journaled_and_succeeds_once_applied(tmp_path: Path, records):
    from search_service.index.store import IndexStore

    index_dir = build_index(tmp_path / "index", [SAMPLE]).index_dir
    settings = Settings(index_dir=index_dir, admin_key=KEY, search_budget_ms=60_000, write_lock_wait_s=0.2)
    with serve_in_thread(create_app(settings)) as url:
        client = meilisearch.Client(url + "/meili", KEY)
        with IndexStore(index_dir).writer_lock():  # as a full rebuild holds it
            info = client.index("articles").add_documents([new_article(records, "meili-journaled")])
            deadline = time.monotonic() + 5
            while not list((index_dir / "journal").glob("*.json")):
                assert time.monotonic() < deadline, "the write was not journaled"
                time.sleep(0.05)
            assert client.get_task(info.task_uid).status == "processing"
        task = client.wait_for_task(info.task_uid, timeout_in_ms=15_000)
        assert task.status == "succeeded" and task.details["indexedDocuments"] == 1
        assert client.index("articles").get_document("meili-journaled").slug == "meili-journaled"


def test_get_search_takes_the_parameters_in_the_query_string(served, index):
    response = httpx.get(
        served + "/meili/indexes/articles/search",
        params={"q": "oil", "filter": "topics = energy", "facets": "topics", "attributesToRetrieve": "slug,title"},
    )
    body = response.json()
    posted = index.search("oil", {"filter": "topics = energy", "facets": ["topics"]})
    assert response.status_code == 200 and body["estimatedTotalHits"] == posted["estimatedTotalHits"] > 0
    assert body["facetDistribution"] == posted["facetDistribution"]
    assert all(set(hit) == {"slug", "title"} for hit in body["hits"])


def test_deleting_the_index_deletes_every_article_and_keeps_the_index(tmp_path: Path):
    build_index(tmp_path / "index", [SAMPLE])
    settings = Settings(index_dir=tmp_path / "index", admin_key=KEY, search_budget_ms=60_000)
    with serve_in_thread(create_app(settings)) as url:
        client = meilisearch.Client(url + "/meili", KEY)
        task = client.wait_for_task(client.index("articles").delete().task_uid, timeout_in_ms=20_000)
        assert task.type == "indexDeletion" and task.status == "succeeded" and task.details["deletedDocuments"] == 40
        assert client.index("articles").get_stats().number_of_documents == 0
        assert client.get_index("articles").uid == "articles"
