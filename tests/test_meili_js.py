"""The npm `meilisearch` client (pinned in tests/meili_js, installed by scripts/install-js) under
node against the served app: add documents and wait for the task, search with a filter, facets,
sort and highlight, get and delete documents, and an error code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, build_index, load_seed, read_jsonl, serve_in_thread

from search_service.http.app import create_app
from search_service.settings import Settings

JS = REPO / "tests" / "meili_js"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
NODE = shutil.which("node")
# The npm client 0.57 declares node ^20.19 || >=22.12 (Debian 12's own nodejs is 18).
MIN_NODE = (20, 19)


def node_version() -> tuple[int, ...]:
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30).stdout
    return tuple(int(part) for part in out.strip().lstrip("v").split(".")[:2])


def need_node(package: str, min_node: tuple[int, int] = (0, 0)) -> None:
    """Skip (fail in CI) without node or the npm package; skip on a node older than it supports."""
    if NODE is None or not (JS / "node_modules" / package).exists():
        reason = f"node or tests/meili_js/node_modules/{package} is missing: scripts/install-js installs them"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    if node_version() < min_node:
        pytest.skip(f"node {'.'.join(map(str, node_version()))} is older than {package} supports")


def run_check(script: str, tmp_path: Path) -> dict:
    """Serve the sample index and run a check script of tests/meili_js against /meili; what it saw."""
    build_index(tmp_path / "index", [SAMPLE])
    article = tmp_path / "article.json"
    article.write_text(json.dumps(load_seed()))
    settings = Settings(index_dir=tmp_path / "index", admin_key="js-key", search_budget_ms=60_000)
    with serve_in_thread(create_app(settings)) as url:
        run = subprocess.run(
            [NODE, str(JS / script), url + "/meili", "js-key", str(article)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_npm_client_basics(tmp_path: Path):
    need_node("meilisearch", MIN_NODE)
    seen = run_check("client_check.mjs", tmp_path)
    assert seen["health"] == {"status": "available"}
    assert seen["added"] == {"status": "succeeded", "details": {"receivedDocuments": 1, "indexedDocuments": 1}}
    assert seen["search"]["total"] == 1 and seen["search"]["title"] == "<em>Narwhal</em> migration"
    assert seen["search"]["facets"]["topics"] == {topic: 1 for topic in load_seed()["topics"]}
    assert seen["document"] == "Narwhal migration"
    assert seen["deleted"]["status"] == "succeeded" and seen["deleted"]["details"]["deletedDocuments"] == 1
    assert seen["after"] == 0
    assert seen["error"] == "invalid_search_filter"


def test_the_client_version_strapis_plugin_pins_makes_the_plugins_calls(tmp_path: Path):
    """strapi-plugin-meilisearch 0.16.5 pins meilisearch 0.48.2: settings, add and update with
    `_meilisearch_id` as primary key, stats, and deletions by its prefixed ids."""
    need_node("meilisearch-strapi")
    seen = run_check("strapi_check.mjs", tmp_path)
    assert "articles" in seen["indexes"]
    assert seen["settings"]["status"] == "succeeded"
    assert seen["added"] == {
        "status": "succeeded",
        "type": "documentAdditionOrUpdate",
        "details": {"receivedDocuments": 1, "indexedDocuments": 1},
        "error": None,
    }
    assert seen["found"] == ["<em>Okapi</em> census"]
    assert seen["updated"]["status"] == "succeeded" and seen["title"] == "Okapi census revised"
    assert "_meilisearch_id" not in seen["stored_keys"] and "slug" in seen["stored_keys"]
    assert seen["documents"] == len(read_jsonl(SAMPLE)) + 1
    for deletion in (seen["deleted_batch"], seen["deleted_one"]):  # prefixed ids name no slug: nothing deleted
        assert deletion["status"] == "succeeded" and deletion["details"]["deletedDocuments"] == 0, deletion
    assert seen["still_there"] == 1
