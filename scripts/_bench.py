"""The benchmark harness: the one copy of the code the scripts in scripts/ share (bench, bench_index,
bench_search, bench_analytics, ...): the command line and the machine, statistics, tables, interleaved
timing, corpus shapes, child processes, servers, wrk.

Only the standard library is imported here, so the scripts can re-exec themselves under the
project's virtualenv before anything from search_service is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn, TypeVar

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
DEFAULT_CORPUS = Path(os.environ.get("BENCH_CORPUS", "/work/shared/corpora/reuters21578/articles.jsonl"))
MB = 1024 * 1024
# What the benchmarks ask /search for: these facets, 10 hits (with highlights).
FACETS = ("topics", "entities", "published_at")
K = TypeVar("K", bound=Hashable)


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


def run(main: Callable[[], int], servers: bool = True) -> NoReturn:
    """A benchmark's `if __name__ == "__main__"` block: exit with main()'s status.

    A ServiceError (a bad config or index) is printed as `error: MESSAGE`, status 2; Ctrl-C exits
    with 130. With `servers`, a RuntimeError (a server or wrk failed; the servers are stopped
    already) is printed as `error: ...`, status 1; without, it keeps its traceback."""
    from search_service.errors import ServiceError

    try:
        sys.exit(main())
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as exc:
        if not servers:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; servers stopped" if servers else "interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()


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


def load_averages() -> str:
    """The 1, 5 and 15 minute load averages, e.g. `1.30, 1.01, 0.49`."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def print_header(details: str = "") -> str:
    """Print the command line and the machine (followed by `details`), warn when the machine is busy:
    the command line, for print_footer()."""
    command = command_line()
    print(f"command: {command}")
    print(f"machine: {machine()}{details}")
    warn_if_busy()
    return command


def print_footer(command: str, minutes: bool = False) -> tuple[float, float, float]:
    """Print the load average at the end (the 1 minute one; with `minutes`, 1, 5 and 15) and the
    command line again: the load averages."""
    load = os.getloadavg()
    shown = ", ".join(f"{x:.2f}" for x in load) + " (1/5/15 min)" if minutes else f"{load[0]:.2f}"
    print(f"\nload average at the end: {shown}")
    print(f"command: {command}")
    return load


@contextlib.contextmanager
def work_dir(prefix: str, parent: str | Path | None = None) -> Iterator[Path]:
    """A temporary directory (under `parent`, default the system's), removed on the way out."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


# -- command-line options -----------------------------------------------------------------------

SHAPE_OPTION_HELP = {
    "corpus": "Reuters JSON Lines corpus",
    "shapes": "corpora side by side: reuters (--corpus) and seed (as many articles generated by "
    "scripts/generate --shape seed, or --seed-corpus); default reuters,seed",
    "seed_corpus": "a seed-shaped JSONL generated before (default: generate)",
    "gen_seed": "scripts/generate --seed for the seed shape",
}


def add_shape_options(parser: argparse.ArgumentParser, gen_seed: bool = True, **help: str) -> None:
    """--corpus, --shapes, --seed-corpus and (with `gen_seed`) --gen-seed, as shape_corpora() takes
    them; `help` replaces their help texts by key (SHAPE_OPTION_HELP). --shapes stays a string until
    parse_shapes()."""
    text = SHAPE_OPTION_HELP | help
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=text["corpus"])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=text["shapes"])
    parser.add_argument("--seed-corpus", type=Path, help=text["seed_corpus"])
    if gen_seed:
        parser.add_argument("--gen-seed", type=int, default=1, help=text["gen_seed"])


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="index config (default: index_config/schema.toml, copied at start)"
    )


def add_writer_options(parser: argparse.ArgumentParser, threads_help: str, heap_help: str) -> None:
    """--threads and --heap-mb of the index writer, by default the service's settings."""
    from search_service.settings import Settings

    defaults = Settings.model_fields
    parser.add_argument("--threads", type=int, default=defaults["writer_threads"].default, help=threads_help)
    parser.add_argument("--heap-mb", type=int, default=defaults["writer_heap_mb"].default, help=heap_help)


def parse_http_grid(args: argparse.Namespace) -> None:
    """--workers and --concurrency, comma-separated, into lists of integers."""
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        fail("--workers and --concurrency take comma-separated integers")


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


def interleaved(
    calls: Mapping[K, Callable[[int], object]],
    n: int,
    passes: int,
    clock: Callable[[], int] = time.perf_counter_ns,
    progress: Callable[[int], None] | None = None,
) -> dict[K, list[list[float]]]:
    """Milliseconds of every call on queries 0..n-1, interleaved query by query: for each query every
    call in turn, the order rotating by query and pass, so load from other processes falls on all of
    them alike. Pass 0 warms caches and is not recorded; `progress(pass)` after each pass. The result:
    key -> per query, its times in pass order. `clock` counts nanoseconds (time.process_time_ns: CPU)."""
    keys = list(calls)
    times: dict[K, list[list[float]]] = {key: [[] for _ in range(n)] for key in keys}
    for pass_number in range(passes + 1):
        for i in range(n):
            shift = (i + pass_number) % len(keys)
            for key in keys[shift:] + keys[:shift]:
                started = clock()
                calls[key](i)
                elapsed = clock() - started
                if pass_number:
                    times[key][i].append(elapsed / 1e6)
        if progress is not None:
            progress(pass_number)
    return times


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


def reset_peak_rss() -> bool:
    """Make VmHWM restart from the current RSS (Linux >= 4.0), so the peak covers the timed part only."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def tree_size(path: str | Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


# -- child processes --------------------------------------------------------------------------------


def child_result(script: str, child: str, args: Sequence[str], timeout: float) -> dict:
    """`SCRIPT --child CHILD ARGS...` in a fresh interpreter, to completion: the JSON object on the last
    line of its output (fail() with the tail of its stderr when it fails)."""
    argv = [sys.executable, os.path.abspath(script), "--child", child, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        fail(f"{child} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def service_env() -> dict[str, str]:
    """This environment without SEARCH_* variables: a server or child gets the service's defaults, not this shell's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}


def service_cli() -> list[str]:
    """The command that runs `search-service`: the virtualenv's, or this interpreter importing its main."""
    cli = VENV / "bin" / "search-service"
    return [str(cli)] if cli.exists() else [sys.executable, "-c", "from search_service.cli import main; main()"]


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


def search_path(q: str, topic: str | None = None) -> str:
    """The /search URL of a benchmark query: FACETS, 10 hits, the topic filter if any."""
    import urllib.parse

    params = [("q", q), ("facets", ",".join(FACETS)), ("per_page", "10")]
    if topic:
        params.append(("topic", topic))
    return "/search?" + urllib.parse.urlencode(params)


def check_urls(server: Server, paths: Iterable[str]) -> None:
    """Every query once (it also warms caches); any non-200 answer stops the benchmark."""
    import urllib.error
    import urllib.request

    for path in paths:
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{server.name}: {path} answered {exc.code}: {exc.read()[:300]!r}") from None


# -- wrk --------------------------------------------------------------------------------------------

WRK_LUA = r"""
-- Generated by scripts/_bench.py: cycle through the query paths, report percentiles as JSON.
paths = { %(paths)s }
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
function init(args)
  reqs = {}
  for i, p in ipairs(paths) do reqs[i] = wrk.format("GET", p) end
  pos = ((id or 0) * 97) %% #reqs
end
function request()
  pos = pos %% #reqs + 1
  return reqs[pos]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\": %%d, \"duration_us\": %%d, \"connect\": %%d, \"read\": %%d, \"write\": %%d, " ..
    "\"status\": %%d, \"timeout\": %%d, \"p50\": %%.0f, \"p90\": %%.0f, \"p95\": %%.0f, \"p99\": %%.0f, " ..
    "\"mean\": %%.1f, \"max\": %%.0f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
"""


def write_wrk_lua(paths: Iterable[str], target: Path) -> Path:
    """A wrk script at TARGET that cycles through the URL paths (each thread from its own place)."""
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    target.write_text(WRK_LUA % {"paths": quoted})
    return target


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "wrk ?"
    return (out.stdout + out.stderr).split("Copyright")[0].strip() or "wrk ?"


def require_wrk(what: str) -> None:
    """fail() unless wrk is installed: it drives `what` of the benchmark, which --skip-http leaves out."""
    if shutil.which("wrk") is None:
        fail(
            f"wrk is not installed; it drives the {what} of this benchmark.\n"
            "  install it with: apt-get update && apt-get install -y wrk   (or run with --skip-http)"
        )


def _wrk_argv(lua: Path, connections: int, seconds: int, threads: int) -> list[str]:
    threads = max(1, min(threads, connections))
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s", "-s", str(lua)]


def _wrk_result(argv: list[str], stdout: str, stderr: str, code: int) -> dict:
    """The figures the Lua script reported, plus rps, errors (of every kind) and argv (URL left out)."""
    line = next((x for x in stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if code != 0 or line is None:
        raise RuntimeError(f"wrk failed ({code}): {' '.join(argv)}\n{stdout}\n{stderr}")
    data = json.loads(line[len("WRK_JSON ") :])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    data["argv"] = " ".join([*argv[:-1], "URL"])
    return data


def run_wrk(url: str, lua: Path, connections: int, seconds: int, threads: int = 2) -> dict:
    """One wrk run of `seconds` against URL with a script from write_wrk_lua(): see _wrk_result()."""
    argv = [*_wrk_argv(lua, connections, seconds, threads), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return _wrk_result(argv, done.stdout, done.stderr, done.returncode)


def run_wrk_together(urls: Mapping[str, str], lua: Path, connections: int, seconds: int, threads: int = 2) -> dict:
    """One wrk per URL, started together: each server gets its own connections, all the same time."""
    running = {}
    for name, url in urls.items():
        argv = [*_wrk_argv(lua, connections, seconds, threads), url]
        running[name] = (argv, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return {
        name: _wrk_result(argv, *process.communicate(timeout=seconds + 60), process.returncode)
        for name, (argv, process) in running.items()
    }


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


def build_index(corpus: Path, index_dir: Path, config: Path, name: str | None = None) -> Path:
    """The service's rebuild of CORPUS into INDEX_DIR under the index config at CONFIG, timed and
    printed (as the index of `name`, if given): INDEX_DIR."""
    from search_service.config import load_config
    from search_service.index.indexer import Indexer
    from search_service.index.store import IndexStore

    started = time.perf_counter()
    report = Indexer(IndexStore(index_dir), load_config(config)).rebuild([str(corpus)])
    label = f" of {name}" if name else ""
    print(f"built the index{label}: {report.indexed} docs in {time.perf_counter() - started:.1f} s")
    return index_dir


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
