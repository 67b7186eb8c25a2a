"""Operations: request ids, metrics, admin authentication, security headers, bounded queries."""

import json
import re
from pathlib import Path

from conftest import SAMPLE, BuiltIndex, api_client

from search_service.index.indexer import Indexer


def test_request_id_is_echoed_or_created(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir) as client:
        given = client.get("/health", headers={"X-Request-ID": "trace-42"})
        created = client.get("/health")
        hostile = client.get("/health", headers={"X-Request-ID": "<script>"})
    assert given.headers["x-request-id"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{16}", created.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["x-request-id"])


def test_json_responses_forbid_content_sniffing(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir) as client:
        ok = client.get("/search", params={"q": "inflation"})
        missing = client.get("/articles/no-such-article")
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404
    assert missing.headers["x-content-type-options"] == "nosniff"


def test_metrics_count_requests_by_route_and_status_and_report_the_index(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir) as client:
        for _ in range(3):
            client.get("/search", params={"q": "inflation"})
        client.get("/search", params={"per_page": 1000})
        text = client.get("/metrics").text
    search_ok = re.search(r'search_http_requests_total\{method="GET",route="/search",status="200"\} (\d+)', text)
    invalid = re.search(r'search_http_requests_total\{method="GET",route="/search",status="422"\} (\d+)', text)
    assert search_ok and int(float(search_ok.group(1))) >= 3
    assert invalid and int(float(invalid.group(1))) >= 1
    assert 'search_http_request_seconds_bucket{le="0.005",route="/search"}' in text
    documents = sum(1 for line in SAMPLE.read_text().splitlines() if line.strip())
    assert f"search_index_documents {float(documents)}" in text
    assert "search_index_last_commit_age_seconds" in text
    assert 'search_last_reindex_seconds{mode="rebuild"}' in text
    assert "search_last_reindex_rejected 0.0" in text


def test_admin_reload_is_disabled_without_a_key(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir) as client:
        response = client.post("/admin/reload")
    assert response.status_code == 404
    assert "SEARCH_ADMIN_KEY" in response.json()["error"]["message"]


def test_admin_reload_needs_the_configured_bearer_key(sample_index: BuiltIndex, tmp_path: Path):
    with api_client(sample_index.index_dir, admin_key="s3cret", reload_interval_s=3600) as client:
        before = client.get("/ready").json()["documents"]
        denied = client.post("/admin/reload", headers={"Authorization": "Bearer wrong"})
        anonymous = client.post("/admin/reload")
        extra = tmp_path / "extra.jsonl"
        first = SAMPLE.read_text().splitlines()[0].replace('"slug": "', '"slug": "copy-of-', 1)
        extra.write_text(first + "\n")
        Indexer(sample_index.store, sample_index.config).upsert([str(extra)])
        allowed = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert denied.status_code == 401
    assert anonymous.status_code == 401
    assert allowed.status_code == 200
    assert allowed.json()["documents"] == before + 1


def test_a_huge_query_is_bounded_not_refused(sample_index: BuiltIndex):
    query = " OR ".join(f"word{i}" for i in range(400))
    with api_client(sample_index.index_dir) as client:
        response = client.get("/search", params={"q": query[:1000], "facets": ""})
        too_long = client.get("/search", params={"q": "x" * 1001})
    assert response.status_code == 200
    assert too_long.status_code == 422
    assert too_long.json()["error"]["message"].startswith("q:")


def test_repeated_searches_are_served_from_the_cache_until_the_index_changes(sample_index: BuiltIndex, tmp_path: Path):
    params = {"q": "inflation", "facets": "topics"}
    with api_client(sample_index.index_dir, reload_interval_s=0.001) as client:
        first = client.get("/search", params=params).json()
        second = client.get("/search", params=params).json()
        other_page = client.get("/search", params={**params, "per_page": 3}).json()
        extra = tmp_path / "extra.jsonl"
        record = SAMPLE.read_text().splitlines()[0].replace('"slug": "', '"slug": "inflation-copy-', 1)
        extra.write_text(record.replace('"title": "', '"title": "Inflation ', 1) + "\n")
        Indexer(sample_index.store, sample_index.config).upsert([str(extra)])
        after_commit = client.get("/search", params=params).json()
    assert (first["cached"], second["cached"], other_page["cached"]) == (False, True, False)
    assert {k: v for k, v in second.items() if k not in ("took_ms", "cached", "query_id")} == {
        k: v for k, v in first.items() if k not in ("took_ms", "cached", "query_id")
    }
    assert after_commit["cached"] is False
    assert after_commit["total"] == first["total"] + 1


def test_pages_and_sort_orders_of_a_query_share_facet_counts_until_the_index_changes(
    sample_index: BuiltIndex, tmp_path: Path
):
    params = {"q": "inflation", "facets": "topics,published_at", "per_page": 1}
    with api_client(sample_index.index_dir, reload_interval_s=0.001) as client:
        engine = client.app.state.engine
        first = client.get("/search", params=params).json()
        second = client.get("/search", params={**params, "page": 2, "sort": "newest"}).json()
        shared = len(engine.facet_cache)
        extra = tmp_path / "extra.jsonl"
        record = SAMPLE.read_text().splitlines()[0].replace('"slug": "', '"slug": "inflation-copy-', 1)
        extra.write_text(record.replace('"title": "', '"title": "Inflation ', 1) + "\n")
        Indexer(sample_index.store, sample_index.config).upsert([str(extra)])
        after_commit = client.get("/search", params={**params, "page": 2}).json()
    assert shared == 1
    assert first["hits"] != second["hits"]
    assert second["facets"] == first["facets"]
    counted = sum(bucket["count"] for bucket in after_commit["facets"]["published_at"])
    assert counted == sum(bucket["count"] for bucket in first["facets"]["published_at"]) + 1
    assert counted == after_commit["total"]


def test_facet_typeahead_keystrokes_share_one_count_until_the_index_changes(sample_index: BuiltIndex, tmp_path: Path):
    record = SAMPLE.read_text().splitlines()[0]
    topics = json.loads(record)["topics"]
    with api_client(sample_index.index_dir, reload_interval_s=0.001) as client:
        engine = client.app.state.engine
        typed = [
            client.get("/facets/topics", params={"prefix": p, "size": 100}).json()["values"] for p in ("", "e", "En")
        ]
        shared = len(engine.value_counts)
        extra = tmp_path / "extra.jsonl"
        extra.write_text(record.replace('"slug": "', '"slug": "copy-', 1) + "\n")
        Indexer(sample_index.store, sample_index.config).upsert([str(extra)])
        after_commit = client.get("/facets/topics", params={"size": 100}).json()["values"]
    assert shared == 1
    assert typed[2] and all(v["value"].startswith("en") for v in typed[2])
    before = {v["value"]: v["count"] for v in typed[0]}
    after = {v["value"]: v["count"] for v in after_commit}
    assert topics and all(after[topic] == before[topic] + 1 for topic in topics)


def test_the_cache_can_be_turned_off(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir, result_cache_size=0) as client:
        responses = [client.get("/search", params={"q": "inflation"}).json() for _ in range(2)]
    assert [r["cached"] for r in responses] == [False, False]


def test_openapi_describes_every_parameter_with_an_example(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir) as client:
        spec = client.get("/openapi.json").json()
    parameters = [
        (path, p) for path, ops in spec["paths"].items() for op in ops.values() for p in op.get("parameters", [])
    ]
    assert len(parameters) > 20
    for path, parameter in parameters:
        assert parameter.get("description") or parameter["in"] == "path", (path, parameter["name"])
        assert "example" in parameter or parameter.get("examples") or parameter["schema"].get("examples"), (
            path,
            parameter["name"],
        )


def test_a_search_over_its_time_budget_drops_snippets_and_facets(sample_index: BuiltIndex):
    with api_client(sample_index.index_dir, search_budget_ms=0.000001) as client:
        slow = client.get("/search", params={"q": "inflation"}).json()
    with api_client(sample_index.index_dir) as client:
        normal = client.get("/search", params={"q": "inflation"}).json()
    assert slow["degraded"] == ["highlights", "facets"]
    assert slow["facets"] == {} and all("highlights" not in hit for hit in slow["hits"])
    assert [h["slug"] for h in slow["hits"]] == [h["slug"] for h in normal["hits"]]
    assert normal["degraded"] == [] and normal["facets"]
