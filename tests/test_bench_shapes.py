"""The benchmarks' shared plumbing for corpus shapes and memory (scripts/_bench.py).

No timing: the seed-shaped corpus the benchmarks generate is the generator's, as many articles as
the Reuters corpus given; bad --shapes are refused; the heap sampler sees anonymous memory grow and
leaves mapped files out of it.
"""

from __future__ import annotations

import json
import mmap
import sys
from pathlib import Path

import pytest
from conftest import REPO, REUTERS

sys.path.insert(0, str(REPO / "scripts"))
import _bench


def test_shapes_are_parsed_and_unknown_ones_refused(capsys: pytest.CaptureFixture) -> None:
    assert _bench.parse_shapes("seed, reuters,seed") == ["seed", "reuters"]
    with pytest.raises(SystemExit) as exc:
        _bench.parse_shapes("reuters,wires")
    assert exc.value.code == 2
    assert "wires" in capsys.readouterr().err


@pytest.mark.skipif(not REUTERS.is_file(), reason=f"{REUTERS} not found")
def test_seed_corpus_has_as_many_articles_as_the_reuters_one(tmp_path: Path) -> None:
    reuters = tmp_path / "reuters.jsonl"
    with open(REUTERS, encoding="utf-8") as source:
        reuters.write_text("".join(next(source) for _ in range(120)), encoding="utf-8")
    corpora = _bench.shape_corpora(["reuters", "seed"], reuters, None, tmp_path)
    assert corpora["reuters"] == reuters
    records = [json.loads(line) for line in corpora["seed"].read_text(encoding="utf-8").splitlines()]
    assert len(records) == 120
    assert all(r["body_md"].count("\n### ") >= 3 and "## Scoring Rationale" in r["body_md"] for r in records)
    assert "body_md median" in _bench.body_stats(corpora["seed"])
    again = _bench.shape_corpora(["seed"], reuters, corpora["seed"], tmp_path / "unused")
    assert again["seed"] == corpora["seed"]  # --seed-corpus: a file generated before, used as it is


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_peak_sampler_counts_the_heap_not_mapped_files(tmp_path: Path) -> None:
    mapped = tmp_path / "segment.bin"
    mapped.write_bytes(b"\x01" * (64 << 20))
    with _bench.PeakSampler(interval=0.01) as idle:
        pass
    with _bench.PeakSampler(interval=0.01) as reading, open(mapped, "rb") as handle:
        view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        assert sum(view[i] for i in range(0, len(view), 4096)) == len(view) // 4096  # touch every page
        reading.sample()
        view.close()
    with _bench.PeakSampler(interval=0.01) as allocating:
        block = bytearray(64 << 20)
        block[::4096] = b"\x02" * len(block[::4096])  # every page written: resident
        allocating.sample()
        del block
    heap = allocating.peaks_kb["RssAnon"] - idle.peaks_kb["RssAnon"]
    assert heap > 60 * 1024
    assert reading.peaks_kb["RssFile"] - idle.peaks_kb["RssFile"] > 60 * 1024
    assert reading.peaks_kb["RssAnon"] - idle.peaks_kb["RssAnon"] < 16 * 1024
