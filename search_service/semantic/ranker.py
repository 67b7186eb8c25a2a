"""Semantic ranking as a search stage: dense candidates fused with lexical ones, and related articles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_service.semantic.embedder import Embedder
from search_service.semantic.registry import MODELS

if TYPE_CHECKING:
    import numpy as np

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
        from search_service.cache import LRUCache

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
        from search_service.semantic.ann import GraphView
        from search_service.semantic.vectors import VectorReader, embeddings_dir

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

        from search_service.semantic.registry import EMBEDDING_FIELD

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

        from search_service.semantic.registry import EMBEDDING_FIELD

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

        from search_service.semantic.registry import EMBEDDING_FIELD

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
        from search_service.semantic.registry import EMBEDDING_FIELD

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
