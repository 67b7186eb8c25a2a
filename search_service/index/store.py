"""The index directory: generations of Tantivy indexes, the pointer to the live one, the writer lock.

    INDEX_DIR/
      CURRENT            {"generation": ..., "previous": ...}, replaced atomically
      .writer.lock       held (flock) by the one process that writes
      .writer.queue      held shared by a CLI run waiting for the lock (HTTP writes then journal)
      writelog/          writes made outside full rebuilds, kept for the next one (writelog.py)
      generations/NAME/  a Tantivy index plus build.json and the index_config that built it
      journal/           writes accepted while the lock was held, not yet applied (journal.py)

A full rebuild writes a new generation and only then points CURRENT at it, so readers see the
old corpus or the new one, never a mix, and a killed run leaves CURRENT untouched. The previous
generation is kept for readers still switching over; older ones are removed by the next writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import tantivy

from search_service.config import IndexConfig
from search_service.durable import replace_durably
from search_service.errors import (
    IndexLockedError,
    IndexNotReadyError,
    IndexWriteError,
    InsufficientStorageError,
    storage_error,
)
from search_service.index.schema import build_schema, register_analyzers

BUILD_INFO = "build.json"
LAST_RUN = "last_run.json"
LOCK_POLL_S = 0.005
QUEUE_FILE = ".writer.queue"
# A failed write with less room than this left is taken for a full disk.
LOW_SPACE = 64 * 2**20
# How often a waiting run says it is still waiting.
WAIT_REPORT_S = 10.0


@dataclass(frozen=True)
class Generation:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def build_info(self) -> dict:
        try:
            return json.loads((self.path / BUILD_INFO).read_text())
        except (OSError, ValueError):
            return {}

    @property
    def fingerprint(self) -> str | None:
        return self.build_info().get("config_fingerprint")

    def last_commit(self) -> datetime | None:
        try:
            return datetime.fromtimestamp((self.path / "meta.json").stat().st_mtime, UTC)
        except OSError:
            return None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def open(self, config: IndexConfig) -> tantivy.Index:
        try:
            index = tantivy.Index(build_schema(config), path=str(self.path), reuse=True)
        except (OSError, ValueError) as exc:
            raise IndexNotReadyError(f"cannot open index generation {self.path}: {exc}") from exc
        register_analyzers(index, config)
        return index


class IndexStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.generations_dir = self.root / "generations"

    def current(self) -> Generation | None:
        pointer = self._read_pointer()
        name = pointer.get("generation")
        if not name or not (self.generations_dir / name / "meta.json").exists():
            return None
        return Generation(self.generations_dir / name)

    def previous(self) -> Generation | None:
        """The generation the live one replaced, while it is kept (until the next switch)."""
        name = self._read_pointer().get("previous")
        if not name or not (self.generations_dir / name / "meta.json").exists():
            return None
        return Generation(self.generations_dir / name)

    def current_name(self) -> str | None:
        """Cheap check for readers polling for a switch."""
        return self._read_pointer().get("generation")

    def _read_pointer(self) -> dict:
        try:
            return json.loads((self.root / "CURRENT").read_text())
        except (OSError, ValueError):
            return {}

    @contextmanager
    def writer_lock(
        self,
        wait_s: float = 0.0,
        *,
        announce: bool = False,
        defer: bool = False,
        on_wait: Callable[[str, float], None] | None = None,
    ) -> Iterator[None]:
        """Hold the one writer lock of this index directory; wait up to `wait_s` for it, then refuse.

        `announce`: while waiting, hold a shared lock on .writer.queue, so that short writers
        called with `defer` journal their work instead of taking the lock first; a run that waits
        is then next, however busy the write API is. `on_wait(holder, waited_s)` hears about the
        wait at its start and every WAIT_REPORT_S."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Unbuffered: on a full disk the pid written below must fail there, not again when closing.
            handle = open(self.root / ".writer.lock", "a+b", buffering=0)  # noqa: SIM115 - held for the block below
        except OSError as exc:
            raise _unusable(self.root, exc) from exc
        with handle, ExitStack() as queue:
            if announce:
                queue.enter_context(self._queue_place())
            if not _flock(handle, wait_s, lambda: defer and self.someone_waiting(), on_wait):
                holder = _holder(handle)
                waited = f" after waiting {wait_s:g} s" if wait_s >= 1 else ""
                raise IndexLockedError(
                    f"another reindex, delete or write is using {self.root} (pid {holder}){waited}; "
                    "try again when it has finished"
                )
            queue.close()
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()).encode())
            except OSError:
                pass  # only a hint for the message above (a full disk must not stop a writer here)
            try:
                yield
            finally:
                with suppress(OSError):
                    handle.truncate(0)

    @contextmanager
    def _queue_place(self) -> Iterator[None]:
        try:
            handle = open(self.root / QUEUE_FILE, "a+")  # noqa: SIM115 - held for the block
        except OSError:
            yield  # cannot announce (read-only?): wait unannounced
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            yield

    def someone_waiting(self) -> bool:
        """Whether a long run (a CLI reindex or delete) waits for the writer lock."""
        try:
            with open(self.root / QUEUE_FILE, "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(handle, fcntl.LOCK_UN)
                return False
        except OSError:
            return False

    def write_condition(self, floor: int) -> str | None:
        """Why writes would be refused now (full, under the floor, read-only), or None: for /ready and /metrics."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError as exc:
            return f"cannot look at the file system of {self.root}: {exc.strerror}"
        if free < max(floor, 1):
            return f"only {free / 2**20:,.1f} MB free for the index in {self.root} (floor {floor / 2**20:,.0f} MB)"
        if not os.access(self.root, os.W_OK):
            return f"the index directory {self.root} is not writable (a read-only file system?)"
        return None

    def check_free_space(self, floor: int) -> None:
        """Refuse a write while the index's file system has less than `floor` bytes free, before
        it can fail half-way (0: no floor)."""
        if not floor:
            return
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return
        if free < floor:
            raise InsufficientStorageError(
                f"only {free / 2**20:,.1f} MB free for the index in {self.root}, under the "
                f"{floor / 2**20:,.0f} MB floor (SEARCH_WRITE_MIN_FREE_MB): writes are refused until space is freed"
            )

    @contextmanager
    def write_errors(self) -> Iterator[None]:
        """Tantivy reports a failed write (a full disk, most often) as a ValueError from its writer
        thread: say what happened and how much room is left instead of a traceback."""
        try:
            yield
        except (ValueError, OSError) as exc:
            try:
                free_bytes: int | None = shutil.disk_usage(self.root).free
                free = f"{free_bytes / 2**20:,.1f} MB of disk space free"
            except OSError:
                free_bytes, free = None, "free space unknown"
            what = f"could not write the index in {self.root} ({free}; is the disk full?)"
            error = storage_error(what, self.root, exc)
            # Tantivy's writer threads lose the errno ("an index writer was killed"): judge by the room left.
            if not isinstance(error, InsufficientStorageError) and free_bytes is not None and free_bytes < LOW_SPACE:
                error = InsufficientStorageError(error.message)
            elif not isinstance(error, IndexWriteError):  # permissions and the like: still a failed write
                error = IndexWriteError(error.message)
            error.message += ". The live index was not changed."
            raise error from exc

    def new_generation(self, config: IndexConfig) -> Generation:
        """An empty index directory for a rebuild; call only while holding the writer lock."""
        self.generations_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.generations_dir / f"g-{stamp}-{os.getpid()}"
        path.mkdir()
        info = {
            "config_fingerprint": config.fingerprint,
            "created_at": datetime.now(UTC).isoformat(),
            "config_path": config.path,
        }
        try:
            (path / BUILD_INFO).write_text(json.dumps(info, indent=2))
            if config.path and os.path.isfile(config.path):
                shutil.copyfile(config.path, path / "index_config.toml")
        except OSError:
            shutil.rmtree(path, ignore_errors=True)  # no partial generation left behind (a full disk)
            raise
        return Generation(path)

    def publish(self, generation: Generation) -> None:
        """Point CURRENT at `generation` in one atomic rename, then drop what no reader needs."""
        old = self.current_name()
        pointer = {"generation": generation.name, "previous": old if old != generation.name else None}
        replace_durably(self.root / "CURRENT", json.dumps(pointer).encode(), self.root / f".CURRENT.{os.getpid()}.tmp")
        self.remove_stale()

    def remove_stale(self) -> None:
        """Delete generations that are neither live nor previous (old ones, or killed builds)."""
        pointer = self._read_pointer()
        keep = {pointer.get("generation"), pointer.get("previous")}
        if not self.generations_dir.is_dir():
            return
        for path in self.generations_dir.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        for pattern in (".CURRENT.*.tmp", f".{LAST_RUN}.*.tmp"):
            for tmp in self.root.glob(pattern):
                tmp.unlink(missing_ok=True)

    def discard(self, generation: Generation) -> None:
        shutil.rmtree(generation.path, ignore_errors=True)


def write_last_run(store: IndexStore, summary: dict) -> None:
    """What the last import did, for operators and /metrics (written atomically). Best effort: the
    run is done when this is called, and a full disk here must not report it as failed."""
    tmp = store.root / f".{LAST_RUN}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(summary))
        os.replace(tmp, store.root / LAST_RUN)
    except OSError:
        tmp.unlink(missing_ok=True)


def read_last_run(store: IndexStore) -> dict:
    try:
        return json.loads((store.root / LAST_RUN).read_text())
    except (OSError, ValueError):
        return {}


def _flock(
    handle: IO, wait_s: float, give_way: Callable[[], bool], on_wait: Callable[[str, float], None] | None
) -> bool:
    # Polled, not a blocking flock: a blocked flock cannot time out, and a waiting HTTP write
    # must give up in time to journal its records instead.
    started = time.monotonic()
    deadline = started + wait_s
    reported = None
    if give_way():
        return False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline or give_way():
                return False
            if on_wait is not None and (reported is None or now - reported >= WAIT_REPORT_S):
                reported = now
                on_wait(_holder(handle), now - started)
            time.sleep(LOCK_POLL_S)


def _holder(handle: IO) -> str:
    try:
        handle.seek(0)
        return handle.read().decode(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _unusable(root: Path, exc: OSError) -> Exception:
    return storage_error(f"cannot use index directory {root}", root, exc)
