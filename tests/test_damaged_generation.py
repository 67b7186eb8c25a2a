"""A damaged live generation (a truncated segment file): never a 500; the previous generation is
served while it is kept, else 503 with the reason; /ready, /metrics and the log name the file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from conftest import SAMPLE, BuiltIndex, api_client, build_index

from search_service.index.indexer import Indexer

ROUTES = (
    "/search?q=oil",
    "/search?q=oil&topic=energy&sort=newest",
    "/facets/topics",
    "/suggest?q=oi",
    "/articles/opec-agrees-modest-output-increase",
    "/articles/opec-agrees-modest-output-increase/related",
)


def truncate_a_segment_file(built: BuiltIndex) -> str:
    """Cut the largest doc store file of the live generation in half: its name."""
    generation = built.store.current()
    victim = max(generation.path.glob("*.store"), key=lambda p: p.stat().st_size)
    os.truncate(victim, victim.stat().st_size // 2)
    return victim.name


@pytest.fixture
def rebuilt_twice(tmp_path: Path) -> BuiltIndex:
    """The sample built, then rebuilt: the first generation is kept as the previous one."""
    built = build_index(tmp_path / "index", [SAMPLE])
    Indexer(built.store, built.config).rebuild([str(SAMPLE)])
    return built


def test_a_damaged_live_generation_falls_back_to_the_previous_one_and_names_the_file(
    rebuilt_twice: BuiltIndex, caplog: pytest.LogCaptureFixture
):
    previous = rebuilt_twice.store.previous().name
    damaged = truncate_a_segment_file(rebuilt_twice)
    with caplog.at_level(logging.ERROR, logger="search_service.reader"), api_client(rebuilt_twice.index_dir) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded" and body["generation"] == previous, body
        assert damaged in body["problem"] and "previous generation" in body["problem"], body
        for route in ROUTES:
            assert http.get(route).status_code == 200, route
        assert http.get("/search?q=oil").json()["total"] > 0
        metrics = http.get("/metrics").text
        assert f'search_index_damaged{{file="{damaged}",generation="{rebuilt_twice.store.current().name}"}} 1.0' in (
            metrics
        ), [line for line in metrics.splitlines() if "damaged" in line]
        logged = [r for r in caplog.records if r.getMessage() == "index generation damaged"]
        assert len(logged) == 1 and logged[0].fields["file"] == damaged, [r.__dict__ for r in logged]

        # A rebuild replaces it: the service follows and is ready again.
        Indexer(rebuilt_twice.store, rebuilt_twice.config).rebuild([str(SAMPLE)])
        # The worker opens (and warms) the new generation in the background: wait for the switch.
        body = http.get("/ready").json()
        deadline = time.monotonic() + 15
        while body["status"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.05)
            body = http.get("/ready").json()
        assert body["status"] == "ready" and body["generation"] == rebuilt_twice.store.current().name, body
        assert "search_index_damaged{" not in http.get("/metrics").text


def test_a_damaged_generation_with_none_kept_before_it_is_503_with_the_reason_never_500(tmp_path: Path):
    built = build_index(tmp_path / "index", [SAMPLE])
    damaged = truncate_a_segment_file(built)
    with api_client(built.index_dir) as http:
        for route in ("/ready", *ROUTES):
            response = http.get(route)
            assert response.status_code == 503, (route, response.text)
            error = response.json()["error"]
            assert error["code"] == "index_not_ready" and damaged in error["message"], (route, error)
        assert http.get("/metrics").status_code == 200
        assert f'file="{damaged}"' in http.get("/metrics").text
