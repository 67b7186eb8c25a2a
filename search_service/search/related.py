"""Related articles: more-like-this over an article's own text, or its nearest by meaning."""

from __future__ import annotations

from typing import Any

import tantivy

from search_service.config import IndexConfig
from search_service.index.document import iso, stored_article
from search_service.index.reader import IndexReader


class RelatedArticles:
    def __init__(self, config: IndexConfig, schema: tantivy.Schema, reader: IndexReader, semantic: Any) -> None:
        self.config = config
        self.schema = schema
        self.reader = reader
        self.semantic = semantic  # a SemanticRanker, or None without [semantic]

    def hits(
        self, searcher: tantivy.Searcher, address: tantivy.DocAddress, slug: str, limit: int
    ) -> list[dict[str, Any]]:
        """More-like-this over the article's own stored text (or its nearest by embedding, with
        [semantic] enabled); never the article itself."""
        key = self.config.key_field.name
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, self._more_like_this(searcher, address)),
                (tantivy.Occur.MustNot, tantivy.Query.term_query(self.schema, key, slug)),
            ]
        )
        found = self._nearest(searcher, address, slug, limit) if self.semantic is not None else None
        result = searcher.search(query, limit).hits if found is None else found
        hits = []
        for score, hit_address in result:
            article = stored_article(self.config, searcher.doc(hit_address))
            hits.append(
                {
                    "slug": article.get("slug"),
                    "title": article.get("title"),
                    "url": article.get("url"),
                    "published_at": iso(article.get("published_at")),
                    "score": round(score, 4),
                }
            )
        return hits

    def _nearest(
        self, searcher: tantivy.Searcher, address: tantivy.DocAddress, slug: str, limit: int
    ) -> list[tuple[float, tantivy.DocAddress]] | None:
        """Nearest by embedding, never the article itself nor an exact duplicate (same title and
        body); None when the article has no vector yet (more-like-this answers then)."""
        own = stored_article(self.config, searcher.doc(address))
        not_self = tantivy.Query.term_query(self.schema, self.config.key_field.name, slug)

        def restrict(term: tantivy.Query) -> tantivy.Query:
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, term), (tantivy.Occur.MustNot, not_self)])

        generation = self.reader.current().generation.path
        near = self.semantic.neighbours(searcher, self.schema, generation, address, limit + 5, restrict)
        if near is None:
            return None
        hits = []
        for hit_address, score in near:
            other = stored_article(self.config, searcher.doc(hit_address))
            if (other.get("title"), other.get("body_md")) != (own.get("title"), own.get("body_md")):
                hits.append((score, hit_address))
        return hits[:limit]

    def _more_like_this(self, searcher: tantivy.Searcher, address: tantivy.DocAddress) -> tantivy.Query:
        return tantivy.Query.more_like_this_query(
            address,
            min_doc_frequency=2,
            max_doc_frequency=max(searcher.num_docs // 5, 10),
            min_term_frequency=1,
            max_query_terms=25,
            min_word_length=3,
            max_word_length=40,
            boost_factor=1.0,
        )
