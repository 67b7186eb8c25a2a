"""A parsed Meilisearch filter (filter_parser.py) as one Tantivy query over the article schema.

What the schema can filter on: the keyword fields (`slug`, `topics`, `entities`, `lang`) by
equality, case-insensitively as Meilisearch compares strings, an array matching when any of its
values does; the date fields (`published_at`, `updated_at`) by equality and ranges, given as unix
seconds or RFC 3339. Every article has every field (the import format requires them), so
`EXISTS` holds for all of them and `IS NULL` for none; `IS EMPTY` finds articles without topics
or entities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import tantivy

from search_service.config import IndexConfig
from search_service.http.meili.filter_parser import (
    And,
    Between,
    Compare,
    Exists,
    In,
    IsEmpty,
    IsNull,
    Node,
    Not,
    Or,
)
from search_service.ingest.article import MAX_DATE, MIN_DATE

# Rust regex (tantivy-fst) metacharacters; everything else stands for itself.
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")


class FilterError(ValueError):
    """A filter that parses but names what the schema cannot filter on; position as the parser's."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class FilterFields:
    """The filterable attributes of the article schema, split by how they compare."""

    keywords: dict[str, bool]  # attribute -> is a multi-valued (array) field
    dates: tuple[str, ...]

    @classmethod
    def from_config(cls, config: IndexConfig) -> FilterFields:
        keywords = {f.source: f.multi for f in config.fields.values() if f.kind == "keyword" and f.source == f.name}
        dates = tuple(f.name for f in config.fields.values() if f.kind == "date")
        return cls(keywords, dates)

    @property
    def names(self) -> list[str]:
        return sorted([*self.keywords, *self.dates])


class FilterBuilder:
    def __init__(self, config: IndexConfig, schema: tantivy.Schema) -> None:
        self.schema = schema
        self.fields = FilterFields.from_config(config)

    def query(self, node: Node) -> tantivy.Query:
        if isinstance(node, And):
            return _bool([(tantivy.Occur.Must, self.query(p)) for p in node.parts])
        if isinstance(node, Or):
            return _bool([(tantivy.Occur.Should, self.query(p)) for p in node.parts])
        if isinstance(node, Not):
            return _negate(self.query(node.inner))
        self._check(node.attribute, node.position)
        if isinstance(node, Exists):
            return tantivy.Query.all_query()
        if isinstance(node, IsNull):
            return tantivy.Query.empty_query()
        if isinstance(node, IsEmpty):
            if self.fields.keywords.get(node.attribute):
                return _negate(tantivy.Query.exists_query(node.attribute))
            return tantivy.Query.empty_query()
        if isinstance(node, In):
            return _bool([(tantivy.Occur.Should, self._equals(node.attribute, v, node.position)) for v in node.values])
        if isinstance(node, Between):
            return self._dates(node.attribute, node.position, low=(node.low, True), high=(node.high, True))
        return self._compare(node)

    def _check(self, attribute: str, position: int) -> None:
        if attribute.startswith("_geo"):
            raise FilterError(f"`{attribute}` is not supported: articles have no geographic position.", position)
        if attribute not in self.fields.keywords and attribute not in self.fields.dates:
            raise FilterError(
                f"Attribute `{attribute}` is not filterable. Available filterable attributes patterns are: "
                f"`{'`, `'.join(self.fields.names)}`.",
                position,
            )

    def _compare(self, node: Compare) -> tantivy.Query:
        if node.op == "=":
            return self._equals(node.attribute, node.value, node.position)
        if node.op == "!=":
            return _negate(self._equals(node.attribute, node.value, node.position))
        if node.attribute not in self.fields.dates:
            raise FilterError(
                f"`{node.attribute}` holds strings: it compares with `=`, `!=`, `IN` and `EXISTS`; "
                f"`{node.op}` works on `{'`, `'.join(self.fields.dates)}`.",
                node.position,
            )
        bound = (node.value, "=" in node.op)
        if node.op.startswith(">"):
            return self._dates(node.attribute, node.position, low=bound)
        return self._dates(node.attribute, node.position, high=bound)

    def _equals(self, attribute: str, value: str, position: int) -> tantivy.Query:
        if attribute in self.fields.dates:
            return self._dates(attribute, position, low=(value, True), high=(value, True))
        if value.lower() == value.upper():  # nothing to fold: an exact term is cheaper than a regex
            return tantivy.Query.term_query(self.schema, attribute, value)
        pattern = "(?i)" + "".join("\\" + c if c in _REGEX_META else c for c in value)
        return tantivy.Query.regex_query(self.schema, attribute, pattern)

    def _dates(
        self,
        attribute: str,
        position: int,
        low: tuple[str, bool] | None = None,
        high: tuple[str, bool] | None = None,
    ) -> tantivy.Query:
        # The index keeps seconds: a bound is compared as its whole second.
        lower = upper = None
        include_lower = include_upper = True
        if low is not None:
            lower = parse_date(low[0], position)
            if not low[1]:
                lower += timedelta(seconds=1)
        if high is not None:
            upper = parse_date(high[0], position)
            include_upper = high[1]
        if lower is not None and upper is not None and lower > upper:
            return tantivy.Query.empty_query()
        return tantivy.Query.range_query(
            self.schema,
            attribute,
            tantivy.FieldType.Date,
            lower,
            upper,
            include_lower=include_lower,
            include_upper=include_upper,
        )


def parse_date(value: str, position: int) -> datetime:
    """Unix seconds (as Meilisearch stores dates for filtering) or an RFC 3339 date-time, to the second."""
    text = value.strip()
    try:
        parsed = datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FilterError(
                f"`{value[:40]}` is not a date: give unix seconds (like 1700000000) or RFC 3339 "
                "(like 2024-03-01T00:00:00Z).",
                position,
            ) from None
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    parsed = parsed.replace(microsecond=0)
    return min(max(parsed, MIN_DATE), MAX_DATE)


def _bool(clauses: list[tuple[tantivy.Occur, tantivy.Query]]) -> tantivy.Query:
    return clauses[0][1] if len(clauses) == 1 else tantivy.Query.boolean_query(clauses)


def _negate(query: tantivy.Query) -> tantivy.Query:
    # A boolean query of only MustNot clauses matches nothing: negate within every article.
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, query)]
    )
