"""Crash trials: a full reindex killed (SIGKILL) at 20 defined points, and a reindex onto a full disk.

Every trial starts from a copy of the same index directory: the 40-article sample corpus built
twice (an old generation for the switch to remove) plus the partial generation of a reindex
killed earlier. A reindex of the first Reuters articles (a run of about a second) is killed:

* by the test, when the index directory reaches a milestone (polled every ~0.2 ms): the writer
  lock taken, the new generation's directory, build.json, Tantivy's meta.json, Tantivy's writer
  lock, the first and second segment flushed; or at fixed fractions of the indexing phase
  measured by an uninterrupted run;
* by itself, from an audit hook (sys.addaudithook) run before the CLI starts, at an exact file
  operation of the service: the config copied into the generation, the CURRENT temp file opened
  or renamed, the first file operation after the switch, the removal of stale generations,
  last_run.json written.

After each kill the index opens through IndexReader with the old count (kill before the atomic
switch) or the new one (after it), never anything else, and the next reindex succeeds without
any manual clean-up, leaving only the live and the previous generation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import tantivy
from conftest import CLI, REUTERS, SAMPLE, build_index, cli_env, read_pointer

from search_service.config import load_config
from search_service.index.reader import IndexReader
from search_service.index.store import IndexStore

SAMPLE_DOCUMENTS = 40
CRASH_DOCUMENTS = 5000  # the first Reuters articles: a reindex of about a second
# Two indexing threads of 16 MB each (Tantivy's minimum is 15 MB a thread): segments are flushed
# while the run goes on, so "first segment written" happens long before the commit.
CRASH_ENV = {"SEARCH_WRITER_HEAP_MB": "32", "SEARCH_WRITER_THREADS": "2"}
SEGMENT_SUFFIXES = (".idx", ".pos", ".term", ".store", ".fast", ".fieldnorm")
TIMEOUT = 60.0

# Run before the CLI: SIGKILLs this very process at the first audited file operation that matches
# CRASH_EVENT and contains CRASH_MATCH in its arguments (after the switch of CURRENT when
# CRASH_AFTER_SWITCH=1). The audit event fires before the operation itself is carried out.
KILLER = """
import os, signal, sys
_EVENT, _MATCH = os.environ["CRASH_EVENT"], os.environ["CRASH_MATCH"]
_AFTER = os.environ.get("CRASH_AFTER_SWITCH") == "1"
_switched = False
def _crash_hook(event, args):
    global _switched
    if event not in ("open", "os.rename", "shutil.rmtree", "shutil.copyfile"):
        return
    if event == _EVENT and _switched == _AFTER and _MATCH in " ".join(map(str, args)):
        os.kill(os.getpid(), signal.SIGKILL)
    if event == "os.rename" and str(args[1]).endswith("CURRENT"):
        _switched = True
sys.addaudithook(_crash_hook)
"""
RUN_CLI = "from search_service.cli import main; main()"


# -- what a poll of the index directory sees ----------------------------------------------------


@dataclass(frozen=True)
class Seen:
    elapsed: float  # seconds since the reindex started
    since_writer: float | None  # seconds since Tantivy's writer lock appeared in the new generation
    lock_holder: str
    new_generations: tuple[str, ...]
    files: frozenset[str]  # files of the newest new generation
    segments: int
    current: str | None


class Watch:
    """Made just before the reindex starts: generations that appear after that are the run's own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started = time.monotonic()
        self.before = _generations(root)
        self.writer_seen: float | None = None

    def look(self) -> Seen:
        now = time.monotonic()
        new = tuple(sorted(_generations(self.root) - self.before))
        files: frozenset[str] = frozenset()
        if new:
            with contextlib.suppress(FileNotFoundError):
                files = frozenset(os.listdir(self.root / "generations" / new[-1]))
        if self.writer_seen is None and ".tantivy-writer.lock" in files:
            self.writer_seen = now
        try:
            holder = (self.root / ".writer.lock").read_text().strip()
        except OSError:
            holder = ""
        try:
            current = json.loads((self.root / "CURRENT").read_text()).get("generation")
        except (OSError, ValueError):
            current = None
        return Seen(
            elapsed=now - self.started,
            since_writer=None if self.writer_seen is None else now - self.writer_seen,
            lock_holder=holder,
            new_generations=new,
            files=files,
            segments=len({name.split(".")[0] for name in files if name.endswith(SEGMENT_SUFFIXES)}),
            current=current,
        )


def _generations(root: Path) -> set[str]:
    try:
        return set(os.listdir(root / "generations"))
    except FileNotFoundError:
        return set()


# -- the kill points ------------------------------------------------------------------------------

OLD, NEW, EITHER = "old", "new", "either"


@dataclass(frozen=True)
class KillPoint:
    name: str
    expect: str  # which index must be served afterwards: OLD, NEW or EITHER
    when: Callable[[Seen, Calibration], bool] | None = None  # polled by the test
    audit: tuple[str, str, bool] | None = None  # (event, match, after switch): the process kills itself


@dataclass(frozen=True)
class Calibration:
    """An uninterrupted reindex of the crash corpus, watched the same way."""

    indexing_s: float  # from Tantivy's writer lock to the switch of CURRENT
    total_s: float
    segments: int  # segments seen at most in the new generation


def _at_fraction(fraction: float) -> Callable[[Seen, Calibration], bool]:
    return lambda seen, cal: seen.since_writer is not None and seen.since_writer >= fraction * cal.indexing_s


KILL_POINTS = [
    KillPoint("at-start", OLD, when=lambda seen, cal: True),
    KillPoint("writer-lock-taken", OLD, when=lambda seen, cal: seen.lock_holder.isdigit()),
    KillPoint("generation-dir-created", OLD, when=lambda seen, cal: bool(seen.new_generations)),
    KillPoint("build-json-written", OLD, when=lambda seen, cal: "build.json" in seen.files),
    KillPoint("tantivy-index-created", OLD, when=lambda seen, cal: "meta.json" in seen.files),
    KillPoint("tantivy-writer-opened", OLD, when=lambda seen, cal: ".tantivy-writer.lock" in seen.files),
    KillPoint("first-segment-written", OLD, when=lambda seen, cal: seen.segments >= 1),
    KillPoint("second-segment-written", OLD, when=lambda seen, cal: seen.segments >= 2),
    # Fractions of a calibrated run: kept well below 100% so a run that happens to be faster than
    # the calibration on a busy machine is still killed mid-way.
    KillPoint("indexing-20%", EITHER, when=_at_fraction(0.20)),
    KillPoint("indexing-40%", EITHER, when=_at_fraction(0.40)),
    KillPoint("indexing-55%", EITHER, when=_at_fraction(0.55)),
    KillPoint("indexing-70%", EITHER, when=_at_fraction(0.70)),
    KillPoint("removing-a-stale-generation-before-indexing", OLD, audit=("shutil.rmtree", "generations", False)),
    KillPoint("config-copied-into-generation", OLD, audit=("shutil.copyfile", "index_config.toml", False)),
    KillPoint("current-tmp-opened", OLD, audit=("open", ".CURRENT.", False)),
    KillPoint("current-tmp-written-before-rename", OLD, audit=("os.rename", ".CURRENT.", False)),
    KillPoint("right-after-the-switch", NEW, audit=("open", "", True)),
    KillPoint("removing-old-generations-after-the-switch", NEW, audit=("shutil.rmtree", "generations", True)),
    KillPoint("last-run-tmp-opened", NEW, audit=("open", ".last_run.json.", True)),
    KillPoint("last-run-tmp-written-before-rename", NEW, audit=("os.rename", ".last_run.json.", True)),
]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crash_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REUTERS.exists():
        pytest.fail(f"test corpus {REUTERS} is missing")
    path = tmp_path_factory.mktemp("crash-corpus") / "articles.jsonl"
    with open(REUTERS, encoding="utf-8") as source, open(path, "w", encoding="utf-8") as target:
        for _, line in zip(range(CRASH_DOCUMENTS), source, strict=False):
            target.write(line)
    return path


@dataclass(frozen=True)
class Template:
    root: Path
    live: str  # the sample generation CURRENT points at
    previous: str
    partial: str  # a generation left by a reindex killed before these trials


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, crash_corpus: Path) -> Template:
    root = tmp_path_factory.mktemp("crash-template") / "index"
    build_index(root, [SAMPLE])
    build_index(root, [SAMPLE])
    pointer = read_pointer(root)
    process, reached, _ = _reindex(root, crash_corpus, lambda seen: ".tantivy-writer.lock" in seen.files)
    assert reached and process.returncode == -signal.SIGKILL
    partial = _generations(root) - {pointer["generation"], pointer["previous"]}
    assert len(partial) == 1, partial
    return Template(root, pointer["generation"], pointer["previous"], partial.pop())


@pytest.fixture(scope="module")
def calibration(template: Template, crash_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Calibration:
    root = tmp_path_factory.mktemp("crash-calibration") / "index"
    shutil.copytree(template.root, root)
    segments = 0
    switched_at: list[float] = []
    writer_at: list[float] = []

    def observe(seen: Seen) -> bool:
        nonlocal segments
        segments = max(segments, seen.segments)
        if seen.since_writer is not None and not writer_at:
            writer_at.append(seen.elapsed - seen.since_writer)
        if seen.current not in (None, template.live) and not switched_at:
            switched_at.append(seen.elapsed)
        return False

    started = time.monotonic()
    process, _, stderr = _reindex(root, crash_corpus, observe)
    total = time.monotonic() - started
    assert process.returncode == 0, stderr
    assert _served(root) == CRASH_DOCUMENTS
    assert writer_at and switched_at, "the uninterrupted run was too fast to watch"
    return Calibration(indexing_s=switched_at[0] - writer_at[0], total_s=total, segments=segments)


# -- helpers --------------------------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**cli_env(), **CRASH_ENV, **(extra or {})}


def _reindex(
    root: Path,
    corpus: Path,
    until: Callable[[Seen], bool],
    env: dict[str, str] | None = None,
    prelude: str = "",
) -> tuple[subprocess.Popen, bool, str]:
    """Run `reindex --index-dir root corpus`; SIGKILL it as soon as `until` holds. (process, killed, stderr)"""
    log = root.parent / f"reindex-{time.monotonic_ns()}.stderr"
    with open(log, "wb") as stderr:
        watch = Watch(root)
        process = subprocess.Popen(
            [sys.executable, "-c", prelude + RUN_CLI, "reindex", "--index-dir", str(root), str(corpus)],
            env=env or _env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        killed = False
        deadline = time.monotonic() + TIMEOUT
        try:
            while process.poll() is None:
                if until(watch.look()):
                    process.kill()
                    killed = True
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"reindex still running after {TIMEOUT:.0f} s")
                time.sleep(0.0002)
        finally:
            if process.poll() is None and not killed:
                process.kill()
            process.wait()
    return process, killed, log.read_text(errors="replace")


def _served(root: Path) -> int:
    """Documents the service would serve from `root`, opened the way the API opens it."""
    reader = IndexReader(IndexStore(root), load_config(), interval=3600)
    searcher = reader.searcher()
    assert searcher.search(tantivy.Query.all_query(), 1, count=True).count == searcher.num_docs
    return searcher.num_docs


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], env=env or cli_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _assert_clean_after_a_successful_run(root: Path, killed_live: str) -> None:
    pointer = read_pointer(root)
    assert pointer["previous"] == killed_live
    assert _generations(root) == {pointer["generation"], pointer["previous"]}, "a stale generation was left behind"
    assert not list(root.glob(".CURRENT.*.tmp"))


# -- the trials -----------------------------------------------------------------------------------


def test_kill_points_are_twenty_distinct_ones():
    assert len(KILL_POINTS) == 20
    assert len({point.name for point in KILL_POINTS}) == 20


@pytest.mark.parametrize("point", KILL_POINTS, ids=[point.name for point in KILL_POINTS])
def test_reindex_killed_at(
    point: KillPoint, template: Template, calibration: Calibration, crash_corpus: Path, tmp_path: Path
):
    root = tmp_path / "index"
    shutil.copytree(template.root, root)
    if point.audit is not None:
        event, match, after = point.audit
        env = _env({"CRASH_EVENT": event, "CRASH_MATCH": match, "CRASH_AFTER_SWITCH": "1" if after else "0"})
        process, _, stderr = _reindex(root, crash_corpus, lambda seen: False, env=env, prelude=KILLER)
    else:
        assert point.when is not None
        for _ in range(3):
            process, killed, stderr = _reindex(root, crash_corpus, lambda seen, cal=calibration: point.when(seen, cal))
            if killed:
                break
            # This run beat the calibrated timing (calibrated while the machine was busier):
            # start again from the template, aiming earlier.
            shutil.rmtree(root)
            shutil.copytree(template.root, root)
            calibration = dataclasses.replace(calibration, indexing_s=calibration.indexing_s / 2)
        assert killed, f"the run ended before reaching {point.name}: {stderr[-2000:]}"
    assert process.returncode == -signal.SIGKILL, f"not killed at {point.name} (exit {process.returncode}): {stderr}"

    # What a server (or a restarted one) serves now: all of the old corpus or all of the new one.
    pointer = read_pointer(root)
    served = _served(root)
    assert served in (SAMPLE_DOCUMENTS, CRASH_DOCUMENTS), f"{served} documents served after a kill at {point.name}"
    switched = pointer["generation"] != template.live
    assert served == (CRASH_DOCUMENTS if switched else SAMPLE_DOCUMENTS)
    if point.expect == OLD:
        assert not switched and served == SAMPLE_DOCUMENTS
    elif point.expect == NEW:
        assert switched and served == CRASH_DOCUMENTS and pointer["previous"] == template.live

    # The next run needs no clean-up: it takes the lock, succeeds and removes what the killed one left.
    result = _cli("reindex", "--index-dir", str(root), str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert _served(root) == SAMPLE_DOCUMENTS
    _assert_clean_after_a_successful_run(root, pointer["generation"])
    assert template.partial not in _generations(root)


def test_a_kill_while_last_run_is_written_leaves_no_litter_after_the_next_run(
    template: Template, crash_corpus: Path, tmp_path: Path
):
    root = tmp_path / "index"
    shutil.copytree(template.root, root)
    env = _env({"CRASH_EVENT": "os.rename", "CRASH_MATCH": ".last_run.json.", "CRASH_AFTER_SWITCH": "1"})
    process, _, _ = _reindex(root, crash_corpus, lambda seen: False, env=env, prelude=KILLER)
    assert process.returncode == -signal.SIGKILL
    result = _cli("reindex", "--index-dir", str(root), str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in root.glob(".*.tmp")) == []


def test_the_calibration_run_was_long_enough_to_kill_in(calibration: Calibration):
    # The fraction kill points mean something only if the indexing phase lasts long enough to poll.
    assert calibration.indexing_s > 0.2, calibration
    assert calibration.segments >= 2, calibration


# -- a full filesystem ----------------------------------------------------------------------------


def _fill_with_a_failed_reindex(filesystem: Path) -> tuple[Path, str, subprocess.CompletedProcess]:
    root = filesystem / "index"
    built = _cli("reindex", "--index-dir", str(root), str(SAMPLE))
    assert built.returncode == 0, built.stderr
    live = read_pointer(root)["generation"]
    failed = _cli("reindex", "--index-dir", str(root), str(REUTERS))  # ~26 MB of index: cannot fit
    return root, live, failed


def test_reindex_onto_a_full_filesystem_keeps_serving_the_previous_index(small_filesystem: Path):
    root, live, failed = _fill_with_a_failed_reindex(small_filesystem)
    assert failed.returncode != 0, failed.stdout
    assert read_pointer(root)["generation"] == live
    assert _served(root) == SAMPLE_DOCUMENTS
    # The next run that fits succeeds with no clean-up and leaves no partial generation behind.
    result = _cli("reindex", "--index-dir", str(root), str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert _served(root) == SAMPLE_DOCUMENTS
    _assert_clean_after_a_successful_run(root, live)


def test_reindex_onto_a_full_filesystem_fails_with_a_clear_message(small_filesystem: Path):
    _, _, failed = _fill_with_a_failed_reindex(small_filesystem)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr and "╭" not in failed.stderr, failed.stderr
    assert failed.stderr.startswith("error: "), failed.stderr
    assert "space" in failed.stderr.lower(), failed.stderr


# -- writer settings Tantivy refuses ----------------------------------------------------------------


def test_a_writer_heap_too_small_for_its_threads_is_a_clear_error(tmp_path: Path):
    root = tmp_path / "index"
    build_index(root, [SAMPLE])
    result = _cli("reindex", "--index-dir", str(root), str(SAMPLE), env={**cli_env(), "SEARCH_WRITER_HEAP_MB": "16"})
    assert _served(root) == SAMPLE_DOCUMENTS
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "╭" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and "heap" in result.stderr.lower(), result.stderr
