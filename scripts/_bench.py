"""Helpers shared by scripts/bench_index and scripts/bench_search: statistics, tables, processes.

Only the standard library is imported here, so the scripts can re-exec themselves under the
project's virtualenv before anything from search_service is imported.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
DEFAULT_CORPUS = Path(os.environ.get("BENCH_CORPUS", "/work/shared/corpora/reuters21578/articles.jsonl"))
MB = 1024 * 1024


def ensure_venv(script: str) -> None:
    """Re-exec under .venv/bin/python when started by another interpreter; exit 2 if impossible."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if VENV_PYTHON.exists() and not os.environ.get("_BENCH_REEXEC"):
        os.environ["_BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])
    try:
        import search_service  # noqa: F401
    except ImportError:
        fail(f"search_service is not importable: create the virtualenv first and run .venv/bin/python {script}")


def load_script(name: str) -> ModuleType:
    """Import an extension-less script of this directory (e.g. bench_index) as a module, for reuse.

    Its `if __name__ == "__main__"` block does not run; it is imported once and cached in sys.modules.
    """
    import importlib.machinery
    import importlib.util

    module_name = name.replace("-", "_")
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader = importlib.machinery.SourceFileLoader(module_name, str(Path(__file__).resolve().parent / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loader.exec_module(module)
    return module


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def command_line() -> str:
    """The command that produced this output, as it could be typed again from the repository root."""
    exe = os.path.relpath(sys.executable) if sys.executable.startswith(str(REPO)) else sys.executable
    script = os.path.relpath(os.path.abspath(sys.argv[0]), os.getcwd())
    return shlex.join([exe, script, *sys.argv[1:]])


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load:.2f} at start"
    )


def warn_if_busy() -> None:
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(
            f"warning: load average {load:.2f} on {cpus} CPUs: other processes compete for the CPU, so absolute "
            "numbers are noisy; the side-by-side ratios are the figures to compare (rerun on a quiet machine)"
        )


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def snapshot_config(path: Path | None, directory: Path) -> Path:
    """A private copy of the index config: edits to index_config/ during a run cannot mix two configs."""
    from search_service.config import DEFAULT_CONFIG_PATH

    source = Path(path or DEFAULT_CONFIG_PATH)
    if not source.is_file():
        fail(f"index config {source} not found")
    target = directory / "schema.toml"
    target.write_bytes(source.read_bytes())
    return target


# -- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- output -------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; `align` is one character per column, 'l' or 'r' (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


# -- memory and disk ------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of /proc/PID/stat, in seconds (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(key: str, pid: int | str = "self") -> int:
    """A `VmHWM`/`VmRSS`-style line of /proc/PID/status, in kB (0 when unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_size(path: str | Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


# -- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group, stopped (group included) by stop()."""

    def __init__(self, name: str, argv: Sequence[str], port: int, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/ready", timeout: float = 30.0) -> None:
        import urllib.error
        import urllib.request

        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                start_new_session=True,  # its own process group: Ctrl-C here does not reach it, stop() does
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"{exc.code} {exc.read()[:500].decode(errors='replace')}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s; {ready_path} said: {last}")

    def child_pids(self) -> list[int]:
        """The server process and its direct children (uvicorn workers)."""
        if self.process is None:
            return []
        pids = [self.process.pid]
        try:
            for task in os.listdir(f"/proc/{self.process.pid}/task"):
                with open(f"/proc/{self.process.pid}/task/{task}/children") as handle:
                    pids.extend(int(p) for p in handle.read().split())
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process and its workers so far."""
        return sum(process_cpu_seconds(pid) for pid in self.child_pids())

    def stop(self, grace: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their supervisor
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} (pid {process.pid}) did not exit", file=sys.stderr)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def terminate_on_sigterm() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit and make sure SIGINT raises KeyboardInterrupt (even when
    started in the background with SIGINT ignored), so `finally` blocks stop the servers."""

    def handler(signum: int, frame: object) -> None:
        print(f"\nstopping: got signal {signum}", file=sys.stderr)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- corpus shapes ----------------------------------------------------------------------------------

SHAPES = ("reuters", "seed")
SHAPE_NAMES = {"reuters": "Reuters wires", "seed": "seed shape"}


def parse_shapes(text: str) -> list[str]:
    shapes = list(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        fail(f"--shapes: {', '.join(unknown) or 'none given'}; choose from {', '.join(SHAPES)}")
    return shapes


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def generate_corpus(
    shape: str, count: int, out: Path, vocab_corpus: Path, seed: int = 1, env: dict[str, str] | None = None
) -> float:
    """`scripts/generate --shape SHAPE --count N` into OUT (streamed, constant memory): seconds taken."""
    started = time.perf_counter()
    argv = [
        sys.executable,
        str(Path(__file__).resolve().parent / "generate"),
        "--shape",
        shape,
        "--count",
        str(count),
        "--seed",
        str(seed),
        "--vocab-corpus",
        str(vocab_corpus),
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        fail(f"scripts/generate failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def shape_corpora(
    shapes: Sequence[str], reuters: Path, seed_corpus: Path | None, work: Path, seed: int = 1
) -> dict[str, Path]:
    """The corpus of each shape at 20k: Reuters itself, and as many seed-shaped articles generated
    into the work dir (or --seed-corpus, a file generated before)."""
    corpora: dict[str, Path] = {}
    for shape in shapes:
        if shape == "reuters":
            corpora[shape] = reuters
        elif seed_corpus is not None:
            if not seed_corpus.is_file():
                fail(f"--seed-corpus {seed_corpus} not found")
            corpora[shape] = seed_corpus
        else:
            count = count_lines(reuters)
            out = work / f"seed-{count}.jsonl"
            seconds = generate_corpus("seed", count, out, reuters, seed)
            print(
                f"generated {count:,} seed-shaped articles in {seconds:.1f} s ({out.stat().st_size / MB:,.0f} MB): "
                f"scripts/generate --shape seed --count {count} --seed {seed}",
                flush=True,
            )
            corpora[shape] = out
    return corpora


def body_stats(corpus: Path) -> str:
    """Median and p99 body_md length of a JSON Lines corpus, for the header of a benchmark."""
    import json

    lengths = []
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                lengths.append(len(json.loads(line).get("body_md") or ""))
    return (
        f"{len(lengths):,} articles, body_md median {median(lengths) / 1000:.2f} KB, "
        f"p99 {percentile(lengths, 99) / 1000:.1f} KB, max {max(lengths, default=0) / 1000:.1f} KB"
    )


class PeakSampler:
    """Peaks of this process's /proc/self/status memory lines, sampled every `interval` s in a thread.

    RssAnon is the heap (what a rebuild allocates); RssFile counts mapped files, e.g. index segments
    being merged, which the kernel can drop at will; VmHWM is the peak of their sum (plus shmem)."""

    KEYS = ("VmHWM", "RssAnon", "RssFile")

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.peaks_kb = dict.fromkeys(self.KEYS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    key = line.split(":", 1)[0]
                    if key in self.peaks_kb:
                        self.peaks_kb[key] = max(self.peaks_kb[key], int(line.split()[1]))
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
