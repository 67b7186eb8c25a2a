"""A full file system, for real: the index on a small tmpfs mounted by the test (root only, else skipped).

Writes are refused with 507 and Retry-After naming the index directory, searches keep answering,
/ready and /metrics show the condition, a rebuild out of space exits with one line and leaves the
live generation serving, and once space is freed writes work again with nothing acknowledged lost.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import (
    CLI,
    REUTERS,
    SAMPLE,
    api_client,
    build_index,
    cli_env,
    generation_names,
    mounted_tmpfs,
    read_jsonl,
)
from test_writes import Server, article, client, present


def fill(directory: Path) -> Path:
    """A file that takes every byte left on the file system of `directory`."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def full_disk_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    with mounted_tmpfs(tmp_path / "fs", "24m") as fs:
        index_dir = build_index(fs / "index", [SAMPLE]).index_dir
        server = Server(index_dir, tmp_path / "server.log", SEARCH_WRITE_MIN_FREE_MB="0").start()
        try:
            yield server, fs
        finally:
            server.stop()


def test_a_full_disk_refuses_writes_cleanly_keeps_searching_and_recovers(
    full_disk_server: tuple[Server, Path], tmp_path: Path
):
    server, fs = full_disk_server
    acknowledged = []
    with client(server) as http:
        assert http.put("/articles/before-full", json=article("before-full")).status_code == 201
        acknowledged.append("before-full")
        filler = fill(fs)

        refused = [
            http.put("/articles/while-full", json=article("while-full")),
            http.post("/articles", json=[article("while-full-batch")]),
            http.delete("/articles/before-full"),
        ]
        for response in refused:
            assert response.status_code == 507, response.text
            assert response.headers["Retry-After"].isdigit(), response.headers
            error = response.json()["error"]
            assert error["code"] == "insufficient_storage" and str(server.index_dir) in error["message"], error
        assert httpx.get(f"{server.url}/search", params={"q": "oil"}).status_code == 200
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 200 and ready.json()["writes"]["accepted"] is False, ready.text
        assert "search_writes_refused 1.0" in httpx.get(f"{server.url}/metrics").text

        # A rebuild out of space: one line, its partial generation gone, the live one still served.
        generations = generation_names(server.index_dir)
        rebuild = subprocess.run(
            [*CLI, "reindex", "--index-dir", str(server.index_dir), str(REUTERS)],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert rebuild.returncode == 7, rebuild.stderr
        assert rebuild.stderr.startswith("error: ") and rebuild.stderr.count("\n") == 1, rebuild.stderr
        assert generation_names(server.index_dir) == generations
        assert httpx.get(f"{server.url}/ready").json()["documents"] == 41

        filler.unlink()
        assert http.put("/articles/after-freed", json=article("after-freed")).status_code == 201
        acknowledged.append("after-freed")
        assert httpx.get(f"{server.url}/ready").json()["writes"]["accepted"] is True
        assert "search_writes_refused 0.0" in httpx.get(f"{server.url}/metrics").text
    assert present(server, [*acknowledged, "while-full", "while-full-batch"]) == set(acknowledged)
    assert not list((server.index_dir / "writelog").glob(".*.tmp")), "a refused write left a partial log entry"
    # The writes acknowledged around the full disk outlast the next rebuild.
    result = subprocess.run(
        [*CLI, "reindex", "--json", "--index-dir", str(server.index_dir), str(SAMPLE)],
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["carried"] == 2
    assert present(server, acknowledged) == set(acknowledged)


def test_writes_are_refused_below_the_free_space_floor_before_they_can_fail_half_way(tmp_path: Path):
    index_dir = build_index(tmp_path / "index", [SAMPLE]).index_dir
    with api_client(index_dir, admin_key="k", write_min_free_mb=10**9) as http:
        response = http.put("/articles/floor", json=article("floor"), headers={"Authorization": "Bearer k"})
        assert response.status_code == 507 and response.headers["Retry-After"], response.text
        assert "SEARCH_WRITE_MIN_FREE_MB" in response.json()["error"]["message"]
        assert http.get("/ready").json()["writes"]["accepted"] is False
        assert http.get("/search", params={"q": "oil"}).status_code == 200


def test_an_index_directory_turned_read_only_refuses_writes_with_503_and_keeps_searching(tmp_path: Path):
    # A file system remounted read-only under a running server (what ext4 does on errors). Tantivy
    # takes a lock file to open an index, so a server started on a read-only one cannot open it.
    with mounted_tmpfs(tmp_path / "fs", "16m") as fs:
        index_dir = build_index(fs / "index", [SAMPLE]).index_dir
        with api_client(index_dir, admin_key="k", write_min_free_mb=0) as http:
            assert http.get("/search", params={"q": "oil"}).status_code == 200
            # Only the index directory turns read-only (a read-only bind mount over it): the file
            # system itself cannot be remounted while the analytics database beside it is open.
            subprocess.run(["mount", "--bind", str(index_dir), str(index_dir)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(index_dir)], check=True)
            auth = {"Authorization": "Bearer k"}
            for response in (
                http.put("/articles/read-only", json=article("read-only"), headers=auth),
                http.delete(f"/articles/{read_jsonl(SAMPLE)[0]['slug']}", headers=auth),
            ):
                assert response.status_code == 503 and response.headers["Retry-After"], response.text
                assert str(index_dir) in response.json()["error"]["message"], response.text
            assert http.get("/search", params={"q": "oil"}).status_code == 200
            writes = http.get("/ready").json()["writes"]
            assert writes["accepted"] is False and "not writable" in writes["reason"], writes
        subprocess.run(["umount", "-l", str(index_dir)], check=False)
