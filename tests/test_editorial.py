"""Synonyms and curation rules over HTTP against a real index, checked against oracles from the JSONL.

The index holds the first 3,000 Reuters articles. The words used here (coffee, cocoa, sugar, grain,
wheat, petroleum, 'crude oil') were chosen because a plain regular expression over the JSONL finds
exactly the articles the index finds for them without synonyms (asserted, so the oracles are right).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import REUTERS, BuiltIndex, api_client, build_index, iter_jsonl, write_jsonl

ADMIN = {"Authorization": "Bearer editor-key"}
ARTICLES = 3000


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    out = []
    for record in iter_jsonl(REUTERS):
        out.append(record)
        if len(out) == ARTICLES:
            return out
    raise AssertionError("corpus too short")


@pytest.fixture(scope="module")
def index(records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    root = tmp_path_factory.mktemp("editorial")
    return build_index(root / "index", [write_jsonl(root / "articles.jsonl", records)])


@pytest.fixture
def client(index: BuiltIndex) -> Iterator[Any]:
    """A fresh app over the module's index, with no synonyms or rules yet."""
    shutil.rmtree(index.index_dir / "editorial", ignore_errors=True)
    with api_client(index.index_dir, admin_key="editor-key", reload_interval_s=0.05) as client:
        yield client


# -- oracles ------------------------------------------------------------------------------------


def _text(record: dict[str, Any], fields: tuple[str, ...] = ("title", "summary", "body_md")) -> str:
    parts = [record[f] for f in fields]
    if fields != ("title",):
        parts.extend(record["entities"])
    return " ".join(parts)


def having(records: list[dict[str, Any]], pattern: str, fields: tuple[str, ...] = ("title", "summary", "body_md")):
    regex = re.compile(pattern, re.IGNORECASE)
    return {r["slug"] for r in records if regex.search(_text(r, fields))}


def word(w: str) -> str:
    return rf"\b{w}s?\b"


def phrase(a: str, b: str) -> str:
    return rf"\b{a}\W+{b}s?\b"


def search(client: Any, q: str = "", **params: Any) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": "", "typos": "false", **params})
    assert response.status_code == 200, response.text
    return response.json()


def total(client: Any, q: str, **params: Any) -> int:
    return search(client, q, **params)["total"]


def all_slugs(client: Any, q: str, per_page: int = 100, **params: Any) -> list[str]:
    slugs: list[str] = []
    page = 1
    while True:
        hits = search(client, q, page=page, per_page=per_page, **params)["hits"]
        slugs.extend(h["slug"] for h in hits)
        if len(hits) < per_page:
            return slugs
        page += 1


def put(client: Any, kind: str, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> Any:
    return client.put(f"/admin/{kind}", json=body, headers=headers)


def put_ok(client: Any, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = put(client, kind, body)
    assert response.status_code == 200, response.text
    return response.json()


def test_oracles_match_the_index_without_synonyms(client: Any, records: list[dict[str, Any]]) -> None:
    for w in ("coffee", "cocoa", "sugar", "grain", "wheat", "petroleum"):
        assert total(client, w) == len(having(records, word(w))), w
    assert total(client, '"crude oil"') == len(having(records, phrase("crude", "oil")))


# -- synonyms -----------------------------------------------------------------------------------


def test_multi_way_group_widens_each_word_to_the_others_and_nothing_else(
    client: Any, records: list[dict[str, Any]]
) -> None:
    coffee, cocoa, sugar, brazil = (having(records, word(w)) for w in ("coffee", "cocoa", "sugar", "brazil"))
    put_ok(client, "synonyms", {"synonyms": [{"words": ["coffee", "cocoa"]}]})
    assert total(client, "coffee") == len(coffee | cocoa)
    assert total(client, "cocoa") == len(coffee | cocoa)
    assert set(all_slugs(client, "cocoa")) == coffee | cocoa
    assert total(client, "sugar") == len(sugar)
    both = search(client, "cocoa brazil")
    assert both["matched"] == "all" and both["total"] == len((coffee | cocoa) & brazil) > len(cocoa & brazil)
    assert total(client, "sugar -cocoa") == len(sugar - cocoa)  # exclusions are not widened


def test_one_way_group_widens_the_root_only(client: Any, records: list[dict[str, Any]]) -> None:
    grain, wheat = having(records, word("grain")), having(records, word("wheat"))
    assert wheat - grain, "the test needs wheat articles that do not say grain"
    put_ok(client, "synonyms", {"synonyms": [{"root": "grain", "words": ["wheat"]}]})
    assert total(client, "grain") == len(grain | wheat)
    assert total(client, "wheat") == len(wheat)


def test_multi_word_synonyms_match_as_phrases(client: Any, records: list[dict[str, Any]]) -> None:
    petroleum = having(records, word("petroleum"))
    crude_oil = having(records, phrase("crude", "oil"))
    crude_and_oil = having(records, word("crude")) & having(records, word("oil"))
    assert crude_and_oil - crude_oil, "the test needs articles with both words apart"
    put_ok(client, "synonyms", {"synonyms": [{"words": ["petroleum", "crude oil"]}]})
    assert total(client, "petroleum") == len(petroleum | crude_oil)
    assert total(client, '"crude oil"') == len(crude_oil | petroleum)
    # Typed without quotes, the words still match anywhere, and the synonym widens them.
    assert total(client, "crude oil") == len(crude_and_oil | petroleum)


def test_synonyms_combine_with_field_syntax_typos_and_prefix(client: Any, records: list[dict[str, Any]]) -> None:
    put_ok(client, "synonyms", {"synonyms": [{"words": ["coffee", "cocoa"]}]})
    in_titles = having(records, word("coffee"), ("title",)) | having(records, word("cocoa"), ("title",))
    assert total(client, "title:coffee") == len(in_titles)
    union = having(records, word("coffee")) | having(records, word("cocoa"))
    # A typo corrected to 'coffee' widens like 'coffee'.
    assert total(client, "cofee", typos="true") >= len(union)
    assert set(all_slugs(client, "cofee", typos="true")) >= union
    # The word typed so far is expanded when it is a synonym, as well as completed.
    assert set(all_slugs(client, "cocoa", prefix="true")) >= union


def test_synonym_matches_score_below_typed_words_and_are_highlighted(client: Any, index: BuiltIndex) -> None:
    put_ok(client, "synonyms", {"synonyms": [{"words": ["petroleum", "crude oil"]}]})
    result = search(client, "petroleum", per_page=100)
    found_by_synonym = 0
    for hit in result["hits"]:
        text = (hit["highlights"]["title"] + " " + hit["highlights"]["snippet"]).lower()
        if "<mark>petroleum" not in text:
            # Tantivy places the snippet window and marks a phrase's words where it finds them.
            assert re.search(r"<mark>(crude|oil)", text), hit["highlights"]
            found_by_synonym += 1
    assert found_by_synonym > 10
    titles = [h["highlights"]["title"] for h in result["hits"]]
    assert any(re.search(r"<mark>crude oil</mark>", t, re.IGNORECASE) for t in titles), titles


def test_an_equal_article_found_by_a_synonym_ranks_below_the_one_with_the_typed_word(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    base = dict(records[0], title="Harvest report", summary="", body_md="The zorbex harvest was late this year.")
    twins = [dict(base, slug="typed"), dict(base, slug="synonym", body_md=base["body_md"].replace("zorbex", "quillon"))]
    built = build_index(tmp_path / "index", [write_jsonl(tmp_path / "twins.jsonl", twins)])
    with api_client(built.index_dir, admin_key="editor-key") as client:
        put_ok(client, "synonyms", {"synonyms": [{"words": ["zorbex", "quillon"]}]})
        for typed, other in (("zorbex", "quillon"), ("quillon", "zorbex")):
            hits = search(client, typed)["hits"]
            assert [h["slug"] for h in hits] == (["typed", "synonym"] if typed == "zorbex" else ["synonym", "typed"])
            assert hits[0]["score"] > hits[1]["score"] > 0
            assert f"<mark>{other}</mark>" in hits[1]["highlights"]["snippet"]


def test_expansion_is_bounded_per_word_and_per_query(client: Any) -> None:
    from search_service.search.synonyms import MAX_PER_QUERY, MAX_PER_SPAN

    words = [f"w{i}x" for i in range(20)]
    put_ok(client, "synonyms", {"synonyms": [{"words": words}]})
    engine = client.app.state.engine
    from search_service.search.query import parse

    parsed = parse(" ".join(words), engine.builder.known_fields)
    expansions = engine.editorial.expansions(parsed, {})
    assert all(len(e.terms) <= MAX_PER_SPAN for e in expansions)
    assert sum(len(e.terms) for e in expansions) == MAX_PER_QUERY
    assert search(client, " ".join(words))["total"] == 0  # answers, and the made-up words match nothing


# -- rules --------------------------------------------------------------------------------------


def _non_matching(records: list[dict[str, Any]], matching: set[str], count: int) -> list[str]:
    return [r["slug"] for r in records if r["slug"] not in matching][:count]


def test_pins_hides_and_totals(client: Any, records: list[dict[str, Any]]) -> None:
    coffee = having(records, word("coffee"))
    organic = all_slugs(client, "coffee")
    outsider = _non_matching(records, coffee, 1)[0]
    hidden, moved = organic[0], organic[5]
    rule = {
        "id": "coffee-desk",
        "query": "coffee",
        "pin": [{"slug": outsider, "position": 1}, {"slug": moved, "position": 3}],
        "hide": [hidden],
    }
    response = put_ok(client, "rules", {"rules": [rule]})
    assert response["warnings"] == []
    result = search(client, "coffee", facets="topics", facet_size=100)
    # The outsider is added, the hidden one removed, the moved one counted once.
    assert result["total"] == len(coffee) - 1 + 1
    assert result["rules"] == ["coffee-desk"]
    hits = result["hits"]
    assert hits[0]["slug"] == outsider and hits[0]["curated"] == "pinned" and hits[0]["score"] is None
    assert hits[2]["slug"] == moved and hits[2]["curated"] == "pinned"
    assert all("curated" not in h for i, h in enumerate(hits) if i not in (0, 2))
    everything = all_slugs(client, "coffee")
    assert hidden not in everything and everything.count(moved) == 1
    assert set(everything) == (coffee - {hidden}) | {outsider}
    # Facets count what a reader reaches among the matches: the hidden one is gone, the outsider is not a match.
    topics = {v["value"]: v["count"] for v in result["facets"]["topics"]}
    reachable = [r for r in records if r["slug"] in coffee - {hidden}]
    assert topics["coffee"] == sum("coffee" in r["topics"] for r in reachable)
    assert sum(topics.values()) == sum(len(set(r["topics"])) for r in reachable)
    # Other queries are untouched.
    assert total(client, "cocoa") == len(having(records, word("cocoa")))


@pytest.mark.parametrize(
    ("per_page", "sort"), [(1, "relevance"), (7, "relevance"), (10, "relevance"), (100, "relevance"), (7, "newest")]
)
def test_paging_with_pins_is_exact(client: Any, records: list[dict[str, Any]], per_page: int, sort: str) -> None:
    sugar = having(records, word("sugar"))
    organic = all_slugs(client, "sugar", sort=sort)
    outsiders = _non_matching(records, sugar, 3)
    pins = [
        {"slug": outsiders[0], "position": 1},
        {"slug": organic[10], "position": 3},
        {"slug": outsiders[1], "position": 8},
        {"slug": outsiders[2], "position": 500},  # past the end: the last hit
    ]
    put_ok(client, "rules", {"rules": [{"id": "sugar", "query": "sugar", "pin": pins, "hide": [organic[2]]}]})
    expected_total = len(sugar) - 1 + 3
    pages = []
    page = 1
    while True:
        result = search(client, "sugar", page=page, per_page=per_page, sort=sort)
        assert result["total"] == expected_total
        pages.append([h["slug"] for h in result["hits"]])
        if len(result["hits"]) < per_page or page * per_page >= expected_total:
            break
        page += 1
    flat = [slug for hits in pages for slug in hits]
    assert len(flat) == len(set(flat)) == expected_total
    assert flat[0] == outsiders[0] and flat[2] == organic[10] and flat[7] == outsiders[1]
    assert flat[-1] == outsiders[2]
    rest = [s for s in flat if s not in {outsiders[0], organic[10], outsiders[1], outsiders[2]}]
    assert rest == [s for s in organic if s not in {organic[2], organic[10]}]


def test_rules_apply_only_inside_their_window(client: Any, records: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    iso = lambda d: d.isoformat().replace("+00:00", "Z")  # noqa: E731
    organic = all_slugs(client, "wheat")
    windows = {
        "past": (now - timedelta(days=2), now - timedelta(days=1)),
        "future": (now + timedelta(days=1), now + timedelta(days=2)),
        "now": (now - timedelta(hours=1), now + timedelta(hours=1)),
    }
    rules = [
        {"id": name, "query": "wheat", "hide": [organic[i]], "active_from": iso(a), "active_until": iso(b)}
        for i, (name, (a, b)) in enumerate(windows.items())
    ]
    put_ok(client, "rules", {"rules": rules})
    result = search(client, "wheat", per_page=100)
    assert result["rules"] == ["now"]
    slugs = all_slugs(client, "wheat")
    assert organic[0] in slugs and organic[1] in slugs and organic[2] not in slugs


def test_browse_rules_are_scoped_by_their_filters(client: Any, records: list[dict[str, Any]]) -> None:
    coffee_topic = [r["slug"] for r in records if "coffee" in r["topics"]]
    outsider = next(r["slug"] for r in records if "coffee" not in r["topics"])
    rule = {
        "id": "coffee-page",
        "query": "",
        "filters": {"topic": ["coffee"]},
        "pin": [{"slug": outsider, "position": 1}],
    }
    put_ok(client, "rules", {"rules": [rule]})
    page = search(client, "", topic="coffee")
    assert page["hits"][0]["slug"] == outsider and page["hits"][0]["curated"] == "pinned"
    assert page["total"] == len(coffee_topic) + 1
    assert search(client, "", topic="sugar")["rules"] == []
    assert search(client, "", topic=["coffee", "sugar"])["rules"] == []  # another page: not exactly these values
    assert search(client, "")["rules"] == []
    assert search(client, "brazil", topic="coffee")["rules"] == []  # a search, not the browse page
    assert search(client, "", topic="coffee", lang="en")["rules"] == ["coffee-page"]  # filters it does not name


def test_rule_queries_are_normalized_and_contains_matches_every_word(
    client: Any, records: list[dict[str, Any]]
) -> None:
    organic = all_slugs(client, "coffee")
    rules = [
        {"id": "exact", "query": "  CÓFFEE ", "hide": [organic[0]]},
        {"id": "contains", "query": "Coffee   Brazil", "match": "contains", "hide": [organic[1]]},
    ]
    stored = put_ok(client, "rules", {"rules": rules})["rules"]
    assert [r["query"] for r in stored] == ["coffee", "coffee brazil"]
    assert search(client, "Coffee")["rules"] == ["exact"]
    assert search(client, "  coffée")["rules"] == ["exact"]
    assert search(client, "coffee prices")["rules"] == []
    assert search(client, "brazil COFFEE exports")["rules"] == ["contains"]
    assert search(client, "brazil exports")["rules"] == []


def test_unknown_slugs_are_warnings_and_the_rule_set_is_kept(client: Any) -> None:
    rule = {"id": "r", "query": "coffee", "pin": [{"slug": "no-such-article", "position": 1}], "hide": ["gone-too"]}
    response = put_ok(client, "rules", {"rules": [rule]})
    assert response["version"] == 1
    assert len(response["warnings"]) == 2 and "no-such-article" in response["warnings"][0]
    result = search(client, "coffee")
    assert result["rules"] == ["r"] and all("curated" not in h for h in result["hits"])


# -- validation, admin key, versions ------------------------------------------------------------

BAD_SYNONYMS = [
    ({"synonyms": [{"words": ["a", "b"], "weight": 2}]}, "weight"),
    ({"synonyms": [{"words": []}]}, "empty group"),
    ({"synonyms": [{"root": "ai", "words": []}]}, "root without words"),
    ({"synonyms": [{"root": "ai", "words": ["AI"]}]}, "root without words"),
    ({"synonyms": [{"words": ["solo"]}]}, "two different words"),
    ({"synonyms": [{"words": ["ok", "!!!"]}]}, "no searchable word"),
    ({"synonyms": [{"words": ["a", "b"]}] * 4}, "at most 3 groups"),
    ({"synonyms": [{"words": [f"w{i}" for i in range(21)]}]}, "at most 20 words"),
    ({"synonym": []}, "synonym"),
]
BAD_RULES = [
    ({"rules": [{"id": "a", "query": "x", "hide": ["s"], "boost": 1}]}, "boost"),
    ({"rules": [{"id": "a", "query": "x", "hide": ["s"]}, {"id": "a", "query": "y", "hide": ["s"]}]}, "unique"),
    ({"rules": [{"id": "a", "query": "x"}]}, "pin or hide"),
    ({"rules": [{"id": "a", "query": " ", "match": "contains", "hide": ["s"]}]}, "needs at least one word"),
    ({"rules": [{"id": "a", "query": "x", "filters": {"colour": ["red"]}, "hide": ["s"]}]}, "unknown filter"),
    ({"rules": [{"id": "a", "query": "x", "pin": [{"slug": "s", "position": 1}], "hide": ["s"]}]}, "both pinned"),
    ({"rules": [{"id": "a", "query": "x", "pin": [{"slug": "s", "position": 0}]}]}, "position"),
    (
        {"rules": [{"id": "a", "hide": ["s"], "active_from": "2026-11-06T00:00:00Z", "active_until": "2026-11-03"}]},
        "later",
    ),
    ({"rules": [{"id": "a", "hide": [f"s{i}" for i in range(51)]}]}, "at most 50"),
]


@pytest.mark.parametrize(
    ("kind", "body", "problem"), [("synonyms", *b) for b in BAD_SYNONYMS] + [("rules", *b) for b in BAD_RULES]
)
def test_invalid_sets_are_422s_that_name_the_problem_and_change_nothing(
    index: BuiltIndex, kind: str, body: dict[str, Any], problem: str
) -> None:
    shutil.rmtree(index.index_dir / "editorial", ignore_errors=True)
    with api_client(index.index_dir, admin_key="editor-key", max_synonym_groups=3) as client:
        valid = (
            {"synonyms": [{"words": ["coffee", "cocoa"]}]}
            if kind == "synonyms"
            else {"rules": [{"id": "ok", "query": "coffee", "hide": ["x"]}]}
        )
        before = put_ok(client, kind, valid)
        response = put(client, kind, body)
        assert response.status_code == 422, response.text
        assert problem in response.json()["error"]["message"]
        assert client.get(f"/admin/{kind}", headers=ADMIN).json() == {
            k: v for k, v in before.items() if k != "warnings"
        }


def test_a_rule_set_with_three_problems_gets_one_422_naming_all_three(client: Any) -> None:
    body = {
        "rules": [
            {"id": "a", "hide": ["s"]},
            {
                "id": "a",
                "pin": [{"slug": "p", "position": 0}],
                "active_from": "2026-11-06T00:00:00Z",
                "active_until": "2026-11-03T00:00:00Z",
            },
        ]
    }
    response = put(client, "rules", body)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    problems = message.split("; ")
    assert len(problems) == 3, message
    assert problems[0].startswith("rules[1].id: ") and "unique" in problems[0]
    assert problems[1].startswith("rules[1].pin[0].position: ") and "1-1000" in problems[1]
    assert problems[2].startswith("rules[1].active_until: ") and "later" in problems[2]
    assert client.get("/admin/rules", headers=ADMIN).json()["version"] == 0


def test_every_editorial_and_write_error_path_has_one_style(client: Any) -> None:
    """Paths read rules[0].pin[0].position everywhere: the sets' own checks and the request validation."""
    groups = [{"words": ["ok", "fine"]}, {"words": ["x", "!!!"]}, {"words": [1]}]
    synonyms = put(client, "synonyms", {"synonyms": groups})
    assert synonyms.status_code == 422
    message = synonyms.json()["error"]["message"]
    assert "synonyms[2].words[0]" in message and "synonyms.2" not in message
    checked = put(client, "synonyms", {"synonyms": [{"words": ["ok", "!!!"]}, {"words": ["solo"]}]})
    assert checked.json()["error"]["message"].split("; ")[0].startswith("synonyms[0].words[1]: ")
    assert "synonyms[1].words: " in checked.json()["error"]["message"]
    deleted = client.post("/articles/delete", json={"slugs": ["ok", 5]}, headers=ADMIN)
    assert deleted.status_code == 422
    assert deleted.json()["error"]["message"].startswith("slugs[1]: ")


def test_rolling_back_the_first_set_returns_to_the_empty_set(client: Any) -> None:
    nothing = client.post("/admin/rules/rollback", headers=ADMIN)
    assert nothing.status_code == 404 and "nothing to roll back" in nothing.json()["error"]["message"]
    put_ok(client, "rules", {"rules": [{"id": "h", "query": "coffee", "hide": ["x"]}]})
    rolled = client.post("/admin/rules/rollback", headers=ADMIN)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 2 and rolled.json()["rules"] == []
    assert client.get("/admin/rules", headers=ADMIN).json()["rules"] == []
    again = client.post("/admin/rules/rollback", headers=ADMIN).json()
    assert again["version"] == 3 and again["rules"][0]["id"] == "h"


def test_admin_routes_need_the_key(index: BuiltIndex) -> None:
    with api_client(index.index_dir) as client:
        for method, path in [("GET", "/admin/synonyms"), ("PUT", "/admin/rules"), ("POST", "/admin/rules/rollback")]:
            assert client.request(method, path, json={}).status_code == 404
    with api_client(index.index_dir, admin_key="editor-key") as client:
        for method, path in [("GET", "/admin/synonyms"), ("PUT", "/admin/rules"), ("POST", "/admin/rules/rollback")]:
            # Refused before the body is read: an invalid body says nothing to someone without the key.
            response = client.request(method, path, json={"nonsense": 1}, headers={"Authorization": "Bearer wrong"})
            assert response.status_code == 401, (path, response.text)


def test_versions_rollback_and_edit_conflicts(client: Any, records: list[dict[str, Any]]) -> None:
    coffee, cocoa = having(records, word("coffee")), having(records, word("cocoa"))
    first = put_ok(client, "synonyms", {"synonyms": [{"words": ["coffee", "cocoa"]}]})
    second = put_ok(client, "synonyms", {"synonyms": [{"words": ["sugar", "cocoa"]}]})
    assert (first["version"], second["version"]) == (1, 2)
    assert total(client, "coffee") == len(coffee)
    rolled = client.post("/admin/synonyms/rollback", headers=ADMIN).json()
    assert rolled["version"] == 3 and rolled["synonyms"] == first["synonyms"]
    assert total(client, "coffee") == len(coffee | cocoa)
    # What GET returns can be PUT back; an edit based on an old version is refused.
    current = client.get("/admin/synonyms", headers=ADMIN).json()
    assert put_ok(client, "synonyms", current)["version"] == 4
    stale = put(client, "synonyms", current)
    assert stale.status_code == 409 and "version 4" in stale.json()["error"]["message"]


def test_cached_responses_follow_editorial_changes(client: Any, records: list[dict[str, Any]]) -> None:
    coffee, cocoa = having(records, word("coffee")), having(records, word("cocoa"))
    assert search(client, "coffee", facets="topics")["total"] == len(coffee)
    assert search(client, "coffee", facets="topics")["cached"]
    put_ok(client, "synonyms", {"synonyms": [{"words": ["coffee", "cocoa"]}]})
    result = search(client, "coffee", facets="topics")
    assert result["total"] == len(coffee | cocoa) and not result["cached"]
    hidden = all_slugs(client, "coffee")[0]
    put_ok(client, "rules", {"rules": [{"id": "h", "query": "coffee", "hide": [hidden]}]})
    result = search(client, "coffee", facets="topics")
    assert result["total"] == len(coffee | cocoa) - 1
    topics = client.get("/facets/topics", params={"q": "coffee", "size": 100}).json()["values"]
    reachable = [r for r in records if r["slug"] in (coffee | cocoa) - {hidden}]
    assert {v["value"]: v["count"] for v in topics}["coffee"] == sum("coffee" in r["topics"] for r in reachable)


@pytest.mark.parametrize(
    "q", ["coffee", "cocoa brazil -sugar", '"crude oil" OR petroleum', "title:grain wheat", "cofee"]
)
def test_without_synonyms_or_rules_the_query_is_the_one_built_before(client: Any, q: str) -> None:
    """Nothing configured: the plan adds nothing to the query builder's own (no synonyms, no exclusions)."""
    from search_service.search.engine import SearchRequest
    from search_service.search.query import parse

    engine = client.app.state.engine
    searcher = engine.reader.searcher()
    parsed = parse(q, engine.builder.known_fields)
    corrections = engine.builder.corrections(parsed, searcher, engine.reader.version)
    plan = engine.plan(SearchRequest(q=q), searcher)
    assert plan.expansions == () and not plan.curation
    assert repr(plan.text_query) == repr(engine.builder.build(parsed, corrections=corrections))


@pytest.mark.parametrize("q", ["petroleum", "cocoa brazil", '"crude oil" sugar', "coffee petroleum wheat"])
def test_synonym_queries_built_once_are_the_ones_a_fresh_builder_builds(client: Any, q: str) -> None:
    """The builder keeps each synonym's query for the next search that widens the same way: reused,
    it is what a builder that never saw it builds, for all words and for the any-word fallback."""
    from search_service.search.query import QueryBuilder, parse

    put_ok(client, "synonyms", {"synonyms": [{"words": ["petroleum", "crude oil"]}, {"words": ["coffee", "cocoa"]}]})
    engine = client.app.state.engine
    searcher = engine.reader.searcher()
    parsed = parse(q, engine.builder.known_fields)
    corrections = engine.builder.corrections(parsed, searcher, engine.reader.version)
    expansions = engine.editorial.expansions(parsed, corrections)
    assert expansions
    built = {}
    for require_all in (True, False, True):
        args = {"require_all": require_all, "corrections": corrections, "expansions": expansions}
        fresh = QueryBuilder(engine.config, engine.schema).build(parsed, **args)
        built[require_all] = repr(engine.builder.build(parsed, **args))
        assert built[require_all] == repr(engine.builder.build(parsed, **args)) == repr(fresh)
    assert built[True] != built[False]


def test_a_damaged_state_file_never_breaks_searches(
    client: Any, index: BuiltIndex, records: list[dict[str, Any]]
) -> None:
    coffee = having(records, word("coffee"))
    hidden = all_slugs(client, "coffee")[0]
    put_ok(client, "rules", {"rules": [{"id": "h", "query": "coffee", "hide": [hidden]}]})
    assert total(client, "coffee") == len(coffee) - 1
    path = index.index_dir / "editorial" / "rules.json"
    # Valid JSON of the wrong shape (a hand edit): the last good set keeps being served.
    path.write_text('{"version": 9, "rules": [{"id": "broken"}]}')
    time.sleep(0.1)
    assert total(client, "coffee") == len(coffee) - 1
    # Not JSON at all, or not an object: searches still answer; the admin API says what is wrong.
    for damage in ("{not json", "[1, 2]"):
        path.write_text(damage)
        time.sleep(0.1)
        assert total(client, "coffee") == len(coffee) - 1
        response = client.get("/admin/rules", headers=ADMIN)
        assert response.status_code == 503 and "rules.json" in response.json()["error"]["message"]
    # A PUT repairs it.
    put_ok(client, "rules", {"rules": []})
    assert total(client, "coffee") == len(coffee)
