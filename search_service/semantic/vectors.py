"""Article vectors carried with an index generation.

    generations/NAME/embeddings/
      vectors.f32   row i: one unit-length float32 vector (dimension floats), appended only
      keys.bin      row i: the 16-byte key of the text row i embeds (semantic.vector_key), appended only
      model.json    the model, its dimension and truncation

Why this layout: vectors are keyed by what was embedded, not by slug or document, so an article
whose text did not change keeps its vector through any reindex (a rebuild starts from a copy of
the previous generation's file instead of embedding again), exact duplicates share one row, and
the Tantivy document only carries its key's id (`_embedding`, the key's first 8 bytes: the
chance that two of a million texts share one is ~3e-8) to find it by. Both files
only grow: a writer appends vectors, then their keys, and fsyncs, so a kill -9 leaves at most
a torn tail, which the next writer cuts off (the number of whole keys is the number of rows);
readers memory-map the vectors (numpy) and use only rows whose key is complete. A row whose
article changed or went away is never served (no live document has its key); a full rebuild
drops such rows once they are COMPACT_DEAD_SHARE of the file, and keeps them (and so every row
number, and the ANN graph built over them) until then. Exact search is one matrix-vector product
over the mapped rows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_service.errors import IndexWriteError

if TYPE_CHECKING:
    import numpy as np
    import tantivy

    from search_service.config import SemanticConfig
    from search_service.semantic.embedder import Embedder

DIRECTORY = "embeddings"
VECTORS = "vectors.f32"
KEYS = "keys.bin"
MODEL = "model.json"
KEY_BYTES = 16
# A rebuild rewrites its vectors without the rows none of its articles uses once they are this
# share of the file: below it, keeping them costs less than a new ANN graph (built afresh when
# rows move) and a pass over every vector.
COMPACT_DEAD_SHARE = 0.2
COMPACT_CHUNK = 65536  # rows copied at a time: ~100 MB of vectors


def embeddings_dir(generation_path: Path) -> Path:
    return generation_path / DIRECTORY


class VectorWriter:
    """Appends vectors to one generation's file; one writer at a time (the index's writer lock)."""

    def __init__(self, directory: Path, model: str, dimension: int) -> None:
        self.directory = directory
        self.model = model
        self.dimension = dimension
        self.row_bytes = dimension * 4
        directory.mkdir(parents=True, exist_ok=True)
        _check_model(directory, model, dimension, create=True)
        rows = whole_rows(directory, dimension)
        # Cut a tail torn by a killed writer: both files end at the last whole row again.
        with open(directory / KEYS, "ab") as keys, open(directory / VECTORS, "ab") as vectors:
            keys.truncate(rows * KEY_BYTES)
            vectors.truncate(rows * self.row_bytes)
        self.rows: dict[bytes, int] = {}
        data = (directory / KEYS).read_bytes()
        for row in range(rows):
            self.rows.setdefault(data[row * KEY_BYTES : (row + 1) * KEY_BYTES], row)
        self._keys = open(directory / KEYS, "ab")  # noqa: SIM115 - closed by close()
        self._vectors = open(directory / VECTORS, "ab")  # noqa: SIM115
        self._count = rows

    def __contains__(self, key: bytes) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return self._count

    def append(self, keys: list[bytes], vectors: np.ndarray) -> int:
        """Add the rows not already there; returns how many were added. Durable once sync() returns."""
        added = 0
        for key, vector in zip(keys, vectors, strict=True):
            if key in self.rows:
                continue
            self._vectors.write(vector.astype("<f4", copy=False).tobytes())
            self._keys.write(key)
            self.rows[key] = self._count
            self._count += 1
            added += 1
        return added

    def sync(self) -> None:
        """Vectors reach the disk before the keys that make them visible."""
        try:
            self._vectors.flush()
            os.fsync(self._vectors.fileno())
            self._keys.flush()
            os.fsync(self._keys.fileno())
        except OSError as exc:
            raise IndexWriteError(f"could not write vectors in {self.directory}: {exc}") from exc

    def close(self) -> None:
        self._vectors.close()
        self._keys.close()

    def compacted(self, keep: set[bytes]) -> VectorWriter:
        """This writer's files rewritten with only the rows of `keep`, in their order, and a writer
        of them; this one is closed. Only for a generation nobody reads yet (a rebuild's): the
        two files are replaced one after the other."""
        import numpy as np

        self.sync()
        self.close()
        rows = np.array(sorted(row for key, row in self.rows.items() if key in keep), dtype=np.int64)
        matrix = np.memmap(self.directory / VECTORS, dtype="<f4", mode="r", shape=(self._count, self.dimension))
        keys = np.fromfile(self.directory / KEYS, dtype=f"V{KEY_BYTES}", count=self._count)
        try:
            for name, data in ((VECTORS, matrix), (KEYS, keys)):
                part = self.directory / f"{name}.compacting"
                with open(part, "wb") as out:
                    for at in range(0, len(rows), COMPACT_CHUNK):
                        out.write(np.ascontiguousarray(data[rows[at : at + COMPACT_CHUNK]]).tobytes())
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(part, self.directory / name)
        except OSError as exc:
            raise IndexWriteError(f"could not write vectors in {self.directory}: {exc}") from exc
        finally:
            del matrix
        return VectorWriter(self.directory, self.model, self.dimension)


class VectorReader:
    """Read-only view of a generation's vectors, memory-mapped; refresh() picks up appended rows."""

    def __init__(self, directory: Path, model: str, dimension: int) -> None:
        self.directory = directory
        self.model = model
        self.dimension = dimension
        self.rows = 0
        self.usable = True
        self._size = -1
        self.matrix: np.ndarray | None = None
        self.keys: np.ndarray | None = None
        self.ids: np.ndarray | None = None  # key ids by row
        self._order: np.ndarray | None = None  # rows by id, for rows_of()
        self.refresh()

    def refresh(self) -> None:
        """Cheap when nothing changed: one stat of the keys file."""
        import numpy as np

        try:
            size = os.stat(self.directory / KEYS).st_size
        except OSError:
            size = 0
        if size == self._size:
            return
        self._size = size
        rows = whole_rows(self.directory, self.dimension)
        if not rows or not _check_model(self.directory, self.model, self.dimension, create=False):
            self.rows, self.matrix, self.keys, self.ids, self._order = 0, None, None, None, None
            return
        self.matrix = np.memmap(self.directory / VECTORS, dtype="<f4", mode="r", shape=(rows, self.dimension))
        self.keys = np.fromfile(self.directory / KEYS, dtype=f"V{KEY_BYTES}", count=rows)
        self.ids = np.frombuffer(self.keys.tobytes(), dtype=">u8").reshape(rows, 2)[:, 0].astype(np.uint64)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]
        self.rows = rows

    def key_id(self, row: int) -> int:
        return int(self.ids[row])

    def rows_of(self, ids: list[int | None]) -> np.ndarray:
        """The row of each key id, -1 where there is none (no vector yet, or no id)."""
        import numpy as np

        wanted = np.array([i if i is not None else 0 for i in ids], dtype=np.uint64)
        if self.ids is None or not len(wanted):
            return np.full(len(wanted), -1, dtype=np.int64)
        sorted_ids = self._sorted
        at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
        rows = self._order[at].astype(np.int64)
        missing = (sorted_ids[at] != wanted) | np.array([i is None for i in ids])
        rows[missing] = -1
        return rows

    def nearest(self, query: np.ndarray, k: int, skip: int = 0) -> list[tuple[int, float]]:
        """Rows ranked skip..skip+k by dot product with `query` (cosine: every vector is unit length)."""
        import numpy as np

        if self.matrix is None or k <= 0:
            return []
        scores = self.matrix @ query
        want = min(skip + k, len(scores))
        top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")][skip:want]
        return [(int(row), float(scores[row])) for row in top]


def key_id(key: bytes) -> int:
    return int.from_bytes(key[:8], "big")


def whole_rows(directory: Path, dimension: int) -> int:
    try:
        keys = os.stat(directory / KEYS).st_size // KEY_BYTES
        vectors = os.stat(directory / VECTORS).st_size // (dimension * 4)
    except OSError:
        return 0
    return min(keys, vectors)


def _check_model(directory: Path, model: str, dimension: int, create: bool) -> bool:
    """Whether the vectors there are this model's; a new file records it."""
    path = directory / MODEL
    wanted = {"model": model, "dimension": dimension}
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        if create:
            path.write_text(json.dumps(wanted))
            return True
        return False
    except (OSError, ValueError):
        found = {}
    if found != wanted:
        if create:
            raise IndexWriteError(
                f"{directory} holds vectors of {found or 'an unknown model'}, not {wanted}: run a full reindex"
            )
        return False
    return True


class ImportVectors:
    """The vectors of one import run into one generation's file.

    `key(values)` is called for every article written (it names the article's vector and is the
    document's `_embedding` term); a text already in the file costs one hash, and the rest are
    embedded `batch_size` at a time. A rebuild (`previous`: the live generation's directory)
    starts from a copy of the previous file, so every unchanged article's vector is already in
    place, rows keep their numbers and the ANN graph over them stays valid (ann.py links it); the
    rows no article of the rebuild uses are dropped once they are COMPACT_DEAD_SHARE of the file.
    `sync()` must return before the index commit that makes the documents visible.
    """

    def __init__(
        self,
        semantic: SemanticConfig,
        directory: Path,
        embedder: Callable[[], Embedder],
        previous: Path | None = None,
        embed: bool = True,
    ) -> None:
        from search_service.semantic.registry import MODELS

        self.semantic = semantic
        self.spec = MODELS[semantic.model]
        self._fields = tuple(semantic.fields)
        inherited = previous is not None and previous != directory
        if inherited:
            _copy_rows(previous, directory, self.spec.name, self.spec.dimension)
        self.writer = VectorWriter(directory, self.spec.name, self.spec.dimension)
        self._inherited = len(self.writer) if inherited else 0
        # The keys this rebuild's articles use: which inherited rows were reused, and which are dead.
        self._live: set[bytes] | None = set() if inherited else None
        self._embedder = embedder
        self._embed = embed
        self._pending: dict[bytes, str] = {}
        self.embedded = 0
        self.reused = 0
        self.missing = 0

    def key(self, values: dict[str, Any]) -> int:
        from search_service.semantic.text import vector_key

        key = vector_key(self.spec, self._fields, self.semantic.max_tokens, values)
        rows = self.writer.rows
        live = self._live
        if live is not None and key not in live:
            live.add(key)
            if rows.get(key, self._inherited) < self._inherited:
                self.reused += 1
        if key in rows or key in self._pending:
            return key_id(key)
        if self._embed:
            from search_service.semantic.text import embedded_text

            self._pending[key] = embedded_text(values, self._fields, self.semantic.max_tokens)
            if len(self._pending) >= self.semantic.batch_size:
                self._flush()
        else:
            self.missing += 1
        return key_id(key)

    def sync(self) -> None:
        self._flush()
        if self._live is not None and self._dead_rows() > COMPACT_DEAD_SHARE * len(self.writer):
            self.writer = self.writer.compacted(self._live)
            self._inherited = 0  # row numbers changed: nothing is the previous generation's any more
        self.writer.sync()

    def close(self) -> None:
        self.writer.close()

    def _dead_rows(self) -> int:
        # Live keys not in the file (not embedded: `embed=False`) hold no row.
        rows = self.writer.rows
        return len(self.writer) - sum(1 for key in self._live or () if key in rows)

    def _flush(self) -> None:
        if not self._pending:
            return
        keys, texts = list(self._pending), list(self._pending.values())
        vectors = self._embedder().embed(texts, self.semantic.batch_size)
        self.embedded += self.writer.append(keys, vectors)
        self._pending.clear()


def _copy_rows(source: Path, directory: Path, model: str, dimension: int) -> None:
    """The whole rows of `source`'s files as the start of `directory`'s (a new generation's, empty
    until now); nothing when `source` holds another model's vectors or none."""
    rows = whole_rows(source, dimension)
    if not rows or not _check_model(source, model, dimension, create=False):
        return
    directory.mkdir(parents=True, exist_ok=True)
    try:
        for name, size in ((VECTORS, rows * dimension * 4), (KEYS, rows * KEY_BYTES)):
            # shutil copies in the kernel (sendfile): ~1.5 KB a row is not worth a pass through
            # Python. Nothing appends to the source meanwhile: the rebuild holds the writer lock.
            shutil.copyfile(source / name, directory / name)
            os.truncate(directory / name, size)
    except OSError as exc:
        raise IndexWriteError(f"could not copy the previous vectors into {directory}: {exc}") from exc


def coverage(searcher: tantivy.Searcher, schema: tantivy.Schema, reader: VectorReader) -> int:
    """Live documents whose vector is in the file."""
    import tantivy

    from search_service.semantic.registry import EMBEDDING_FIELD

    if reader.ids is None or not reader.rows:
        return 0
    query = tantivy.Query.term_set_query(schema, EMBEDDING_FIELD, [int(i) for i in reader.ids])
    return searcher.search(query, 1, count=True).count
