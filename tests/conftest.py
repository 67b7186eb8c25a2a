"""Shared fixtures and helpers: corpus paths, real Tantivy indexes built on disk, JSONL oracles.

Every index here is a real one, built by the service's own Indexer into a temporary directory.
Helpers that tests import (`from conftest import ...`) are plain functions; fixtures build indexes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import tantivy

from search_service.config import DEFAULT_CONFIG_PATH, IndexConfig, load_config
from search_service.index.document import stored_article
from search_service.index.indexer import Indexer
from search_service.index.report import Hooks, ImportReport, IndexerOptions, Reject
from search_service.index.store import IndexStore

REPO = Path(__file__).resolve().parents[1]
# /work/shared locally; ../shared next to the repository in CI.
SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPORA = SHARED / "corpora"
REUTERS = CORPORA / "reuters21578" / "articles.jsonl"
BAD = CORPORA / "reuters21578" / "bad.jsonl"
BAD_EXPECTED = CORPORA / "reuters21578" / "bad.expected.md"
SEED = CORPORA / "seed" / "000_b817233da8320ed4.txt"
SAMPLE = REPO / "search_service" / "sample_data" / "articles.jsonl"
SHIPPED_CONFIG = DEFAULT_CONFIG_PATH

REUTERS_DOCUMENTS = 20_841
# A Python that runs the CLI exactly like the `search-service` console script does.
CLI = [sys.executable, "-c", "from search_service.cli import main; main()"]


# -- data helpers -------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a clean JSON Lines file, decoded with the stdlib (not through the service)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def oracle_counts(path: str | Path, key: str) -> Counter[str]:
    """Documents per value of `key` (a list field like topics/entities, or a scalar like lang),
    counted straight from the JSONL: a document counts once per distinct value."""
    counts: Counter[str] = Counter()
    for record in iter_jsonl(path):
        value = record[key]
        counts.update(set(value) if isinstance(value, list) else {value})
    return counts


def load_seed() -> dict[str, Any]:
    """The seed record: one valid article in the import format (a fresh copy each call)."""
    return json.loads(SEED.read_text(encoding="utf-8"))


# -- index helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltIndex:
    """An index directory built by the service, the config that built it and the import report."""

    index_dir: Path
    config: IndexConfig
    report: ImportReport
    rejects: tuple[Reject, ...] = ()
    warnings: tuple[tuple[str, int, str], ...] = ()

    @property
    def store(self) -> IndexStore:
        return IndexStore(self.index_dir)

    def open(self) -> tantivy.Index:
        generation = self.store.current()
        assert generation is not None, f"no live generation in {self.index_dir}"
        return generation.open(self.config)

    def searcher(self) -> tantivy.Searcher:
        return self.open().searcher()


def build_index(
    index_dir: str | Path,
    paths: Iterable[str | Path],
    config: IndexConfig | None = None,
    options: IndexerOptions | None = None,
) -> BuiltIndex:
    """A full rebuild of `paths` into `index_dir`, collecting rejects and warnings."""
    config = config or load_config()
    rejects: list[Reject] = []
    warnings: list[tuple[str, int, str]] = []
    hooks = Hooks(on_reject=rejects.append, on_warning=lambda source, line, msg: warnings.append((source, line, msg)))
    indexer = Indexer(IndexStore(index_dir), config, options, hooks)
    report = indexer.rebuild([str(p) for p in paths])
    return BuiltIndex(Path(index_dir), config, report, tuple(rejects), tuple(warnings))


def doc_count(index_dir: str | Path, config: IndexConfig | None = None) -> int:
    """Live documents in the current generation of `index_dir`, opened afresh."""
    generation = IndexStore(index_dir).current()
    assert generation is not None, f"no live generation in {index_dir}"
    return generation.open(config or load_config()).searcher().num_docs


def facet_counts(searcher: tantivy.Searcher, field: str, query: tantivy.Query | None = None) -> dict[str, int]:
    """Documents per value of a fast keyword field, by an exact terms aggregation."""
    request = {"f": {"terms": {"field": field, "size": 100_000, "segment_size": 100_000}}}
    result = searcher.aggregate(query or tantivy.Query.all_query(), request)["f"]
    assert result.get("sum_other_doc_count", 0) == 0, "terms aggregation left buckets out"
    return {bucket["key"]: bucket["doc_count"] for bucket in result["buckets"]}


def assert_same_facets(got: dict[str, Any], want: dict[str, Any], size: int = 10) -> None:
    """A benchmark peer's facets agree with the service's: the same date buckets, and per terms
    facet the same counts in order, the same values above the last place and the same count for
    every value both list. Of values tied at the last place each may keep others: the service keeps
    the smallest value ids (search/facet_ids.py), the peers the first by name."""
    assert got.keys() == want.keys()
    for name, values in want.items():
        other = got[name]
        if not values or "value" not in values[0]:
            assert other == values, name
            continue
        assert [v["count"] for v in other[:size]] == [v["count"] for v in values[:size]], name
        cut = values[size - 1]["count"] if len(values) >= size else -1
        assert [v for v in other[:size] if v["count"] > cut] == [v for v in values[:size] if v["count"] > cut], name
        counts = {v["value"]: v["count"] for v in values}
        assert all(counts.get(v["value"], v["count"]) == v["count"] for v in other), name


def count_matches(index: tantivy.Index, query: tantivy.Query) -> int:
    return index.searcher().search(query, limit=1).count


def term_count(index: tantivy.Index, field: str, value: str) -> int:
    """Live documents holding the exact term (deleted documents do not count, unlike doc_freq)."""
    return count_matches(index, tantivy.Query.term_query(index.schema, field, value))


def stored_by_slug(index: tantivy.Index, config: IndexConfig) -> dict[str, dict[str, Any]]:
    """Every live document as stored article data, keyed by slug."""
    searcher = index.searcher()
    result = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1))
    docs = (stored_article(config, searcher.doc(address)) for _, address in result.hits)
    return {doc["slug"]: doc for doc in docs}


def live_slugs(index_dir: str | Path, config: IndexConfig | None = None) -> set[str]:
    generation = IndexStore(index_dir).current()
    assert generation is not None
    config = config or load_config()
    return set(stored_by_slug(generation.open(config), config))


def generation_names(index_dir: str | Path) -> set[str]:
    generations = Path(index_dir) / "generations"
    return {p.name for p in generations.iterdir()} if generations.is_dir() else set()


def read_pointer(index_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(index_dir) / "CURRENT").read_text())


def cli_env() -> dict[str, str]:
    """The environment for a CLI subprocess, without any SEARCH_* setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}


# -- a served app in its own processes ----------------------------------------------------------

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """`search-service serve --workers 2` in its own process group, logging JSON lines to a file.

    `env` adds SEARCH_* settings (an empty value removes one)."""

    def __init__(self, index_dir: Path, log_path: Path, **env: str) -> None:
        self.index_dir = index_dir
        self.log_path = log_path
        self.port = free_port()
        self.env = {k: v for k, v in (cli_env() | env).items() if v != ""}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        argv = [*CLI, "serve", "--workers", "2", "--port", str(self.port), "--index-dir", str(self.index_dir)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited: {self.log_path.read_text()[-3000:]}"
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200 and self.workers_up():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not up after {START_TIMEOUT_S} s: {self.log_path.read_text()[-3000:]}")

    def workers_up(self) -> bool:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return False
        return len(children) >= 2  # uvicorn's supervisor and its two workers

    def kill9(self) -> None:
        """SIGKILL the whole process group at once: no worker gets to finish anything."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()

    def served_by(self) -> dict[str, int]:
        """request id -> pid of the worker that answered it, from the JSON access log."""
        out = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("msg") == "request":
                    out[entry["request_id"]] = entry["pid"]
        return out

    def log_entries(self, msg: str) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e.get("msg") == msg]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_search_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read SEARCH_* variables; a developer's shell must not change what tests see."""
    for name in list(os.environ):
        if name.startswith("SEARCH_"):
            monkeypatch.delenv(name)


def _require(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"test corpus {path} is missing: the shared corpora must sit at {SHARED}")


@pytest.fixture(scope="session")
def shipped_config() -> IndexConfig:
    return load_config()


@pytest.fixture(scope="session")
def reuters_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """The whole Reuters-21578 corpus, built once per session. Read-only: do not write to it."""
    _require(REUTERS)
    return build_index(tmp_path_factory.mktemp("reuters-index"), [REUTERS])


@pytest.fixture(scope="session")
def bad_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """bad.jsonl built once per session, with its rejects and warnings. Read-only."""
    _require(BAD)
    return build_index(tmp_path_factory.mktemp("bad-index"), [BAD])


@pytest.fixture
def sample_index(tmp_path: Path) -> BuiltIndex:
    """The packaged sample corpus, built fresh for one test (which may change it)."""
    return build_index(tmp_path / "index", [SAMPLE])


@pytest.fixture
def seed_record() -> dict[str, Any]:
    _require(SEED)
    return load_seed()


# -- HTTP API fixtures (tests/test_api_*.py) ----------------------------------------------------


def api_client(index_dir: str | Path, **settings: Any) -> Any:
    """A TestClient over a real index directory; use it as a context manager so the lifespan runs.

    Settings are built with every SEARCH_* variable of the developer's shell removed."""
    from fastapi.testclient import TestClient

    from search_service.http.app import create_app
    from search_service.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        # The per-search time budget degrades slow searches; a busy test machine must not trip it
        # in tests that check snippets and facets (test_operations pins the budget itself).
        settings.setdefault("search_budget_ms", 60_000)
        app = create_app(Settings(index_dir=Path(index_dir), **settings))
    return TestClient(app)


@pytest.fixture(scope="session")
def reuters_records() -> list[dict[str, Any]]:
    """articles.jsonl decoded with the stdlib: the oracle for API tests (never read through the service)."""
    _require(REUTERS)
    return read_jsonl(REUTERS)


@pytest.fixture(scope="session")
def reuters_client(reuters_index: BuiltIndex) -> Iterator[Any]:
    """The API over the session's Reuters index, lifespan started once. Read-only."""
    with api_client(reuters_index.index_dir) as client:
        yield client


@pytest.fixture
def hostile_index(tmp_path: Path) -> BuiltIndex:
    """bad.jsonl (its accepted records: markup, CJK, RTL, emoji, ...) plus the sample corpus, built fresh."""
    _require(BAD)
    return build_index(tmp_path / "hostile-index", [BAD, SAMPLE])


@pytest.fixture
def hostile_client(hostile_index: BuiltIndex) -> Iterator[Any]:
    """The API over `hostile_index`."""
    with api_client(hostile_index.index_dir) as client:
        yield client


# -- semantic ranking (tests/test_semantic*.py) -------------------------------------------------


def semantic_config(tmp_path: Path, **semantic: Any) -> IndexConfig:
    """The shipped config with [semantic] enabled (small batches, so tests see several), written to
    a file so that CLI subprocesses and servers run it too."""
    return config_with(tmp_path, "semantic", **({"enabled": True, "batch_size": 4, "threads": 1} | semantic))


def config_with(tmp_path: Path, section_name: str, **values: Any) -> IndexConfig:
    """The shipped config with keys of one of its sections changed, written to a file (its `path`)
    so that CLI subprocesses and servers run it too."""
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    head, section, tail = text.partition(f"\n[{section_name}]\n")
    body, next_section, rest = tail.partition("\n[")
    for key, value in values.items():
        body, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", body)
        assert found == 1, key
    path = tmp_path / f"schema-{len(list(tmp_path.glob('schema-*.toml')))}.toml"
    path.write_text(head + section + body + next_section + rest, encoding="utf-8")
    return load_config(path)


def reuters(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Reuters articles with a body of some length (the model has something to read), from `start`."""
    records = []
    for record in iter_jsonl(REUTERS):
        if len(record.get("body_md", "")) > 200:
            records.append(record)
        if len(records) >= start + count:
            break
    return records[start:]


def engine_for(index_dir: Path, config: IndexConfig) -> Any:
    """A SearchEngine over `index_dir` that looks for commits at every search."""
    from search_service.index.reader import IndexReader
    from search_service.search.engine import SearchEngine

    return SearchEngine(IndexReader(IndexStore(index_dir), config, interval=0.0), config)


# -- a small file system (tests/test_crash.py, tests/test_full_disk.py) -------------------------


@contextmanager
def mounted_tmpfs(target: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `target` (root only); the test is skipped where mounting is not permitted."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (root only); the test is skipped where mounting is not permitted."""
    with mounted_tmpfs(tmp_path / "small-fs", "3m") as target:
        yield target


# -- the browser --------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# Flags for Debian's Chromium as root on a machine with no network beyond loopback.
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the page tests (their modules skip or fail first when it is missing)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def wait_until_ready(base: str, process: Any, timeout: float = 30.0) -> None:
    """Until the `search-service serve` subprocess at `base` answers /ready (fails when it exits or times out)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not become ready at {base} (exit code {process.poll()})")
        time.sleep(0.1)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port in a thread, for the page tests; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
