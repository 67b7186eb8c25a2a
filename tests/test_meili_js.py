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
from conftest import REPO, SAMPLE, build_index, load_seed, serve_in_thread

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


def test_the_npm_client_basics(tmp_path: Path):
    if NODE is None or not (JS / "node_modules" / "meilisearch").exists():
        reason = "node or tests/meili_js/node_modules is missing: scripts/install-js installs them"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    if node_version() < MIN_NODE:
        pytest.skip(f"node {'.'.join(map(str, node_version()))} is older than the npm client supports (20.19)")
    build_index(tmp_path / "index", [SAMPLE])
    article = tmp_path / "article.json"
    article.write_text(json.dumps(load_seed()))
    settings = Settings(index_dir=tmp_path / "index", admin_key="js-key", search_budget_ms=60_000)
    with serve_in_thread(create_app(settings)) as url:
        run = subprocess.run(
            [NODE, str(JS / "client_check.mjs"), url + "/meili", "js-key", str(article)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["health"] == {"status": "available"}
    assert seen["added"] == {"status": "succeeded", "details": {"receivedDocuments": 1, "indexedDocuments": 1}}
    assert seen["search"]["total"] == 1 and seen["search"]["title"] == "<em>Narwhal</em> migration"
    assert seen["search"]["facets"]["topics"] == {topic: 1 for topic in load_seed()["topics"]}
    assert seen["document"] == "Narwhal migration"
    assert seen["deleted"]["status"] == "succeeded" and seen["deleted"]["details"]["deletedDocuments"] == 1
    assert seen["after"] == 0
    assert seen["error"] == "invalid_search_filter"
