"""Editorial state in operation: seen by every worker of a running server, kept across a full
rebuild, and managed from the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import CLI, SAMPLE, api_client, build_index, cli_env, read_jsonl, wait_until_ready

KEY = "ops-editor-key"
ADMIN = {"Authorization": f"Bearer {KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _searches_by_worker(metrics_dir: Path) -> dict[str, float]:
    """/search requests answered so far by each worker process, from its prometheus multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        counts[path.stem] = sum(
            v for key, v, *_ in values if "search_http_requests_total" in key and '"/search"' in key
        )
    return counts


def _total(base: str, q: str) -> int:
    # A new connection each time, so the kernel may hand it to either worker.
    response = httpx.get(f"{base}/search", params={"q": q, "facets": ""}, headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_a_change_is_seen_by_both_workers_within_a_second(tmp_path: Path) -> None:
    built = build_index(tmp_path / "index", [SAMPLE])
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = cli_env() | {"SEARCH_ADMIN_KEY": KEY, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "SEARCH_ACCESS_LOG": "false"}
    command = [*CLI, "serve", "--workers", "2", "--port", str(port), "--index-dir", str(built.index_dir)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_ready(base, server)
        deadline = time.monotonic() + 30
        before = _total(base, "zorbexquill")
        assert before == 0
        with ThreadPoolExecutor(8) as pool:
            while len(_searches_by_worker(metrics)) < 2 and time.monotonic() < deadline:
                list(pool.map(lambda _: _total(base, "oil"), range(16)))
        assert len(_searches_by_worker(metrics)) == 2, "both workers should have answered"
        oil = _total(base, "oil")

        response = httpx.put(
            f"{base}/admin/synonyms", json={"synonyms": [{"words": ["zorbexquill", "oil"]}]}, headers=ADMIN, timeout=10
        )
        assert response.status_code == 200, response.text
        changed_at = time.monotonic()
        counts = _searches_by_worker(metrics)
        time.sleep(max(0.0, changed_at + 1.0 - time.monotonic()))
        with ThreadPoolExecutor(8) as pool:
            totals = list(pool.map(lambda _: _total(base, "zorbexquill"), range(48)))
        after = _searches_by_worker(metrics)
        assert totals == [oil] * len(totals)
        assert all(after[worker] > counts[worker] for worker in counts), (counts, after)
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_editorial_state_survives_a_full_rebuild_and_is_managed_from_the_cli(tmp_path: Path) -> None:
    records = read_jsonl(SAMPLE)
    built = build_index(tmp_path / "index", [SAMPLE])
    index_dir = str(built.index_dir)
    synonyms = tmp_path / "synonyms.json"
    synonyms.write_text(json.dumps({"synonyms": [{"root": "zorbexquill", "words": ["oil"]}]}))
    rules = tmp_path / "rules.json"
    pinned = records[7]["slug"]
    rules.write_text(json.dumps({"rules": [{"id": "front", "query": "", "pin": [{"slug": pinned, "position": 1}]}]}))

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args, "--index-dir", index_dir], env=cli_env(), input=stdin, capture_output=True, text=True
        )

    assert cli("synonyms", "set", str(synonyms)).returncode == 0
    done = cli("rules", "set", str(rules))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    refused = cli("rules", "set", "-", stdin='{"rules": [{"id": "x", "query": "a"}]}')
    assert refused.returncode != 0 and "pin or hide" in refused.stderr

    rebuilt = subprocess.run(
        [*CLI, "reindex", str(SAMPLE), "--index-dir", index_dir], env=cli_env(), capture_output=True, text=True
    )
    assert rebuilt.returncode == 0, rebuilt.stderr

    kept = json.loads(cli("rules", "get").stdout)
    assert kept["version"] == 1 and kept["rules"][0]["pin"] == [{"slug": pinned, "position": 1}]
    assert json.loads(cli("synonyms", "get").stdout)["synonyms"] == [{"root": "zorbexquill", "words": ["oil"]}]
    with api_client(built.index_dir) as client:
        oil = client.get("/search", params={"q": "oil", "facets": ""}).json()["total"]
        assert oil > 0
        assert client.get("/search", params={"q": "zorbexquill", "facets": ""}).json()["total"] == oil
        front = client.get("/search", params={"facets": ""}).json()
        assert front["hits"][0]["slug"] == pinned and front["hits"][0]["curated"] == "pinned"
        assert front["total"] == len(records)

    # The first set ever saved rolls back to the empty set before it, and that rollback rolls back too.
    rolled = cli("synonyms", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout) | {"updated_at": None} == {"version": 2, "updated_at": None, "synonyms": []}
    assert json.loads(cli("synonyms", "rollback").stdout)["synonyms"] == [{"root": "zorbexquill", "words": ["oil"]}]


def test_a_killed_writer_leaves_the_old_set_or_the_new_one(tmp_path: Path) -> None:
    """The live file is only ever replaced by rename: a writer killed at any moment leaves a whole set."""
    from search_service.editorial.store import EditorialStore

    store = EditorialStore(tmp_path)
    store.replace("synonyms", [{"words": ["a", "b"]}])
    script = (
        "import sys\nfrom search_service.editorial.store import EditorialStore\n"
        "s = EditorialStore(sys.argv[1])\n"
        "for i in range(100000):\n"
        "    s.replace('synonyms', [{'words': ['a', 'b', f'w{i}']}] * 200)\n"
        "    if i == 0: print('writing', flush=True)\n"
    )
    versions = []
    for delay in (0.0, 0.03, 0.1):
        writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=cli_env(), stdout=subprocess.PIPE)
        assert writer.stdout.readline() == b"writing\n"
        time.sleep(delay)
        os.kill(writer.pid, 9)
        writer.wait()
        current = store.read("synonyms")
        assert current.version >= 1 and current.items and all(g["words"][:2] == ["a", "b"] for g in current.items)
        previous = store.read("synonyms", previous=True)
        # Killed between its two renames, the previous set is already the live one: still whole.
        assert previous.version in (current.version - 1, current.version)
        versions.append(current.version)
    assert versions == sorted(versions) and versions[-1] > versions[0] + 1, "the writers were killed mid-run"


@pytest.mark.parametrize("kind", ["synonyms", "rules"])
def test_cli_get_prints_an_empty_set_before_the_first(tmp_path: Path, kind: str) -> None:
    done = subprocess.run(
        [*CLI, kind, "get", "--index-dir", str(tmp_path)], env=cli_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"version": 0, "updated_at": None, kind: []}
