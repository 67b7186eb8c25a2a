"""The declarative index schema in index_config/, loaded and validated into plain dataclasses."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import tantivy

from search_service.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "index_config" / "schema.toml"

FieldKind = Literal["text", "keyword", "date", "stored"]
TOKENIZERS = ("regex", "raw", "simple", "whitespace", "ngram")
FILTERS = ("lowercase", "ascii_fold", "stemmer", "stopword", "remove_long", "alphanum_only")
ARTICLE_ATTRIBUTES = (
    "slug",
    "title",
    "summary",
    "body_md",
    "body_text",
    "cjk_text",
    "url",
    "canonical_source",
    "published_at",
    "updated_at",
    "lang",
    "topics",
    "entities",
    "alternates",
)


@dataclass(frozen=True)
class AnalyzerConfig:
    name: str
    tokenizer: str
    pattern: str | None = None
    ngram: tuple[int, int] | None = None
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldConfig:
    name: str
    kind: FieldKind
    source: str
    stored: bool = False
    analyzer: str | None = None
    boost: float | None = None
    query_name: str | None = None
    multi: bool = False
    facet: bool = False
    filter_param: str | None = None
    search_boost: float | None = None
    histogram: bool = False
    key: bool = False

    @property
    def seconds_field(self) -> str | None:
        """Integer companion of a date field (seconds since the epoch): cheap to read per hit."""
        return f"{self.name}__ts" if self.kind == "date" else None

    @property
    def search_field(self) -> str | None:
        """The analyzed companion field of a keyword field that is also searched as text."""
        return f"{self.name}__text" if self.search_boost is not None else None


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_048_576
    max_title_chars: int = 1_000
    max_summary_chars: int = 5_000
    max_slug_chars: int = 200
    max_topics: int = 100
    max_entities: int = 500
    max_facet_value_chars: int = 200


@dataclass(frozen=True)
class SnippetConfig:
    fields: tuple[str, ...] = ("body", "summary")
    max_chars: int = 200


FRESHNESS_FUNCTIONS = ("gauss", "exp", "linear", "none")
# A bigger window costs every relevance search a deeper top-k and one date read per hit.
MAX_FRESHNESS_WINDOW = 10_000


@dataclass(frozen=True)
class FreshnessConfig:
    """[ranking.freshness]: Elasticsearch's decay functions over an article's age (search_service/freshness.py)."""

    function: str = "exp"
    scale_days: float = 7.0
    offset_days: float = 0.0
    decay: float = 0.5
    weight: float = 0.3
    # How many of the best BM25 hits are re-ranked; deeper hits keep BM25 order.
    window: int = 200

    @property
    def enabled(self) -> bool:
        return self.function != "none" and self.weight > 0


@dataclass(frozen=True)
class RankingConfig:
    typo_tolerance: bool = True
    # Meilisearch's defaults: no typo under 5 letters, one from 5, two from 9.
    one_typo_min_len: int = 5
    two_typos_min_len: int = 9
    max_typo_words: int = 6
    # A word found in at least this many articles is searched as typed (news: rare words are names).
    typo_known_word_docs: int = 1
    # A correction is a term found in at least this many articles.
    typo_correction_min_docs: int = 3
    fallback_min_hits: int = 5
    # A query holding every word in at most this many articles is checked for a likelier spelling
    # ("did you mean"), offered when a word's one-edit variant is in `did_you_mean_ratio` times
    # as many articles and the respelled query finds more.
    did_you_mean_max_hits: int = 4
    did_you_mean_ratio: int = 20
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    # Field name -> boost for the any-word fallback (sentence queries); empty: the fields' own boosts.
    fallback_boosts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentConfig:
    """What of a body is not the article: dropped before indexing and snippets (see content.py)."""

    drop_sections: tuple[str, ...] = ()  # heading texts; case and spacing ignored
    drop_paragraphs: tuple[str, ...] = ()  # regular expressions searched in each paragraph

    def __bool__(self) -> bool:
        return bool(self.drop_sections or self.drop_paragraphs)


@dataclass(frozen=True)
class CountingConfig:
    """[counting]: facet counts exact up to `exact_up_to` articles, past it estimated from a sample
    of about `sample_size` of them (search/counting.py). Read at query time: no rebuild."""

    exact_up_to: int = 10_000
    sample_size: int = 10_000
    # The date histogram: exact up to this many articles, sampled at this size past it (a date is
    # cheap to count, and a month of a broad query is a small share of its matches).
    date_sample_size: int = 200_000
    # Browse pages (filters, no words) count exactly, kept per index version.
    browse_exact: bool = True


@dataclass(frozen=True)
class SemanticConfig:
    """[semantic]: embeddings at import and hybrid ranking (needs the `semantic` extra when enabled)."""

    enabled: bool = False
    model: str = "all-MiniLM-L6-v2-onnx-int8"
    # Article attributes embedded, in order, joined by newlines and truncated at max_tokens tokens.
    fields: tuple[str, ...] = ("title", "summary", "body_text")
    max_tokens: int = 256
    batch_size: int = 32
    threads: int = 1
    fusion: str = "convex"
    lexical_weight: float = 0.3
    rrf_k: float = 60.0
    depth: int = 100
    # Feedback in vector space: the query vector moved towards its best `feedback_docs` fused hits
    # (by feedback_weight times their mean), then searched and fused again. 0 turns it off.
    feedback_docs: int = 0
    feedback_weight: float = 0.5
    # The HNSW graph (ann.py) for the dense top-N once a generation holds this many vectors; below,
    # an exact dot product. None of these is in the fingerprint: the graph is derived from the
    # vectors, so a change never re-embeds (connectivity and expansion_add apply to the next graph
    # built, expansion_search to the next search).
    ann_min_vectors: int = 30_000
    ann_tail_rows: int = 2_000
    ann_connectivity: int = 16
    ann_expansion_add: int = 128
    ann_expansion_search: int = 200

    def indexed(self) -> dict[str, Any]:
        """What decides the vectors written at import: part of the fingerprint when enabled."""
        return {"model": self.model, "fields": list(self.fields), "max_tokens": self.max_tokens, "ids": "u64"}


@dataclass(frozen=True)
class IndexConfig:
    analyzers: dict[str, AnalyzerConfig]
    fields: dict[str, FieldConfig]
    limits: Limits = field(default_factory=Limits)
    snippets: SnippetConfig = field(default_factory=SnippetConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    path: str = ""
    content: ContentConfig = field(default_factory=ContentConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    counting: CountingConfig = field(default_factory=CountingConfig)

    @property
    def key_field(self) -> FieldConfig:
        return next(f for f in self.fields.values() if f.key)

    @property
    def text_fields(self) -> list[FieldConfig]:
        return [f for f in self.fields.values() if f.kind == "text"]

    @property
    def facets(self) -> dict[str, FieldConfig]:
        return {f.name: f for f in self.fields.values() if f.facet}

    @property
    def filters(self) -> dict[str, FieldConfig]:
        return {f.filter_param: f for f in self.fields.values() if f.filter_param}

    @property
    def histogram_field(self) -> FieldConfig | None:
        return next((f for f in self.fields.values() if f.histogram), None)

    def search_boosts(self) -> dict[str, float]:
        """Index field name -> boost for every field in the default ranked search."""
        boosts = {f.name: f.boost for f in self.text_fields if f.boost is not None}
        for f in self.fields.values():
            if f.search_field:
                boosts[f.search_field] = f.search_boost
        return boosts

    def fallback_search_boosts(self) -> dict[str, float]:
        """Index field name -> boost for the any-word fallback: [ranking] fallback_boosts, else search_boosts()."""
        if not self.ranking.fallback_boosts:
            return self.search_boosts()
        return {self.fields[name].search_field or name: boost for name, boost in self.ranking.fallback_boosts.items()}

    def query_names(self) -> dict[str, FieldConfig]:
        return {f.query_name: f for f in self.fields.values() if f.query_name}

    @property
    def fingerprint(self) -> str:
        """Hash of everything that decides what is written into the index.

        Boosts, snippets, ranking and limits are query- or import-time settings: changing them
        must not force a rebuild, so they are left out. Content rules change the indexed text: in.
        """
        indexed = {
            "layout": SCHEMA_LAYOUT,
            "analyzers": {n: asdict(a) for n, a in sorted(self.analyzers.items())},
            "fields": {
                n: {k: v for k, v in asdict(f).items() if k not in _QUERY_TIME_FIELD_KEYS}
                | {"search_field": f.search_field}
                for n, f in sorted(self.fields.items())
            },
        }
        if self.content:  # rules decide the indexed text; without any, fingerprints stay as they were
            indexed["content"] = asdict(self.content)
        if self.semantic.enabled:
            indexed["semantic"] = self.semantic.indexed()
        blob = json.dumps(indexed, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# Bump when the code changes how fields become index fields (e.g. a new companion field).
# 4: every document carries its sample key (index/schema.py SAMPLE_FIELD, for estimated counts).
# 5: keyword facets also carry their values as 64-bit ids (index/schema.py value_ids_field).
# 6: every document carries the sample levels its key falls in (index/schema.py SAMPLE_LEVELS_FIELD).
SCHEMA_LAYOUT = 6
_QUERY_TIME_FIELD_KEYS = ("boost", "query_name", "filter_param", "search_boost", "histogram")


def load_config(path: str | Path | None = None, recorded: bool = False) -> IndexConfig:
    """The config at `path`. `recorded`: the copy an index generation keeps of the config that built
    it, read to carry its articles over; see parse_config."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read index config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"index config {path} is not valid TOML: {exc}") from exc
    return parse_config(raw, str(path), recorded)


def parse_config(raw: dict[str, Any], path: str = "<config>", recorded: bool = False) -> IndexConfig:
    """`recorded`: a generation's own copy, used for its fields only: its [ranking] is not read, so a
    generation built before a ranking key was renamed (recency_weight) can still be migrated."""
    problems: list[str] = []
    if recorded:
        raw = {key: value for key, value in raw.items() if key != "ranking"} | {
            "ranking": {"freshness": {"function": "none"}}
        }
    analyzers = {name: _analyzer(name, spec, problems) for name, spec in _table(raw, "analyzers", problems).items()}
    fields = {name: _field(name, spec, analyzers, problems) for name, spec in _table(raw, "fields", problems).items()}
    limits = _section(Limits, raw.get("limits", {}), "limits", problems)
    snippets = _section(SnippetConfig, raw.get("snippets", {}), "snippets", problems)
    ranking = _ranking(raw.get("ranking", {}), problems)
    content = _content(raw.get("content", {}), problems)
    semantic = _section(SemanticConfig, raw.get("semantic", {}), "semantic", problems)
    counting = _counting(raw.get("counting", {}), problems)
    unknown = set(raw) - {"analyzers", "fields", "limits", "snippets", "ranking", "content", "semantic", "counting"}
    if unknown:
        problems.append(f"unknown sections: {', '.join(sorted(unknown))}")
    _check_whole(fields, snippets, ranking, problems)
    _check_semantic(semantic, problems)
    if problems:
        raise ConfigError(f"invalid index config {path}:\n  - " + "\n  - ".join(problems))
    return IndexConfig(analyzers, fields, limits, snippets, ranking, path, content, semantic, counting)


def _table(raw: dict[str, Any], name: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict) or not value:
        problems.append(f"{name} is missing or empty")
        return {}
    return value


def _analyzer(name: str, spec: Any, problems: list[str]) -> AnalyzerConfig:
    where = f"analyzers.{name}"
    if not isinstance(spec, dict):
        problems.append(f"{where} must be a table")
        return AnalyzerConfig(name, "raw")
    tokenizer = spec.get("tokenizer")
    if tokenizer not in TOKENIZERS:
        problems.append(f"{where}.tokenizer must be one of {', '.join(TOKENIZERS)} (got {tokenizer!r})")
    if tokenizer == "regex" and not isinstance(spec.get("pattern"), str):
        problems.append(f"{where}.pattern is required for the regex tokenizer")
    ngram = spec.get("ngram")
    valid_ngram = isinstance(ngram, list) and len(ngram) == 2 and all(isinstance(n, int) for n in ngram)
    if tokenizer == "ngram" and not (valid_ngram and 1 <= ngram[0] <= ngram[1]):
        problems.append(f"{where}.ngram must be [min, max] with 1 <= min <= max for the ngram tokenizer")
    filters = spec.get("filters", [])
    if not isinstance(filters, list):
        problems.append(f"{where}.filters must be a list")
        filters = []
    for f in filters:
        if not isinstance(f, str) or f.split(":", 1)[0] not in FILTERS:
            problems.append(f"{where}.filters: unknown filter {f!r} (known: {', '.join(FILTERS)})")
    unknown = set(spec) - {"tokenizer", "pattern", "ngram", "filters"}
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    analyzer = AnalyzerConfig(
        name,
        str(tokenizer),
        spec.get("pattern"),
        tuple(ngram) if tokenizer == "ngram" and valid_ngram else None,
        tuple(filters),
    )
    if not any(p.startswith(where) for p in problems):
        _try_build(analyzer, where, problems)
    return analyzer


def build_analyzer(spec: AnalyzerConfig) -> tantivy.TextAnalyzer:
    """The Tantivy analyzer a spec describes (raises ValueError on arguments Tantivy refuses)."""
    if spec.tokenizer == "regex":
        tokenizer = tantivy.Tokenizer.regex(spec.pattern)
    elif spec.tokenizer == "ngram":
        tokenizer = tantivy.Tokenizer.ngram(*spec.ngram)
    else:
        tokenizer = getattr(tantivy.Tokenizer, spec.tokenizer)()
    builder = tantivy.TextAnalyzerBuilder(tokenizer)
    for item in spec.filters:
        name, _, arg = item.partition(":")
        make = getattr(tantivy.Filter, name)
        if name == "remove_long":
            if not arg.isdigit():
                raise ValueError(f"filter {item!r} needs a length, like remove_long:40")
            builder = builder.filter(make(int(arg)))
        elif name in ("stemmer", "stopword"):
            if not arg:
                raise ValueError(f"filter {item!r} needs a language, like {name}:english")
            builder = builder.filter(make(arg))
        else:
            builder = builder.filter(make())
    return builder.build()


def _try_build(analyzer: AnalyzerConfig, where: str, problems: list[str]) -> None:
    """Let Tantivy judge the arguments (regex syntax, stemmer languages) now, not at first use."""
    try:
        build_analyzer(analyzer)
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}: {exc}")


_FIELD_KEYS = {f for f in FieldConfig.__dataclass_fields__} - {"name"}


def _field(name: str, spec: Any, analyzers: dict[str, AnalyzerConfig], problems: list[str]) -> FieldConfig:
    where = f"fields.{name}"
    if not isinstance(spec, dict):
        problems.append(f"{where} must be a table")
        return FieldConfig(name, "stored", name)
    unknown = set(spec) - _FIELD_KEYS
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(_FIELD_KEYS))})")
    spec = {k: v for k, v in spec.items() if k in _FIELD_KEYS}
    spec.setdefault("source", name)
    try:
        fc = FieldConfig(name=name, **spec)
    except TypeError as exc:
        problems.append(f"{where}: {exc}")
        return FieldConfig(name, "stored", name)
    for attr in ("stored", "multi", "facet", "histogram", "key"):
        if not isinstance(getattr(fc, attr), bool):
            problems.append(f"{where}.{attr} must be true or false")
    for attr in ("analyzer", "query_name", "filter_param", "source"):
        value = getattr(fc, attr)
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}.{attr} must be a string")
    if fc.kind not in ("text", "keyword", "date", "stored"):
        problems.append(f"{where}.kind must be text, keyword, date or stored (got {fc.kind!r})")
    if fc.source not in ARTICLE_ATTRIBUTES:
        problems.append(f"{where}.source {fc.source!r} is not an article attribute ({', '.join(ARTICLE_ATTRIBUTES)})")
    if (fc.kind == "text" or fc.search_boost is not None) and fc.analyzer not in analyzers:
        problems.append(f"{where}.analyzer must name one of [analyzers] (got {fc.analyzer!r})")
    for attr in ("boost", "search_boost"):
        value = getattr(fc, attr)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"{where}.{attr} must be a positive number")
    if fc.boost is not None and fc.kind != "text":
        problems.append(f"{where}.boost only applies to text fields; use search_boost for keywords")
    if (fc.facet or fc.multi or fc.key or fc.search_boost) and fc.kind != "keyword":
        problems.append(f"{where}: facet, multi, key and search_boost only apply to keyword fields")
    if fc.histogram and fc.kind != "date":
        problems.append(f"{where}.histogram only applies to date fields")
    if fc.multi and fc.key:
        problems.append(f"{where}: the key field cannot be multi-valued")
    return fc


def _section(cls: type, raw: Any, name: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{name} must be a table")
        return cls()
    known = set(cls.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        problems.append(f"{name}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    for key, value in values.items():
        spec = cls.__dataclass_fields__[key]
        default = spec.default if spec.default_factory is MISSING else spec.default_factory()
        if isinstance(default, dict):
            _check_weights(value, f"{name}.{key}", problems)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                problems.append(f"{name}.{key} must be a non-negative number (got {value!r})")
        elif type(value) is not type(default):
            problems.append(f"{name}.{key} must be a {type(default).__name__} (got {value!r})")
    return cls(**values)


def _ranking(raw: Any, problems: list[str]) -> RankingConfig:
    """[ranking], whose [ranking.freshness] table is checked by _freshness."""
    if not isinstance(raw, dict):
        return _section(RankingConfig, raw, "ranking", problems)
    raw = dict(raw)
    _reject_recency_keys(raw, problems)
    freshness = _freshness(raw.pop("freshness", {}), problems)
    return replace(_section(RankingConfig, raw, "ranking", problems), freshness=freshness)


_RECENCY_KEYS = ("recency_weight", "recency_half_life_days")


def _reject_recency_keys(raw: dict[str, Any], problems: list[str]) -> None:
    """The multiplicative recency boost is gone; say what to write instead, with the old values."""
    old = {key: raw.pop(key) for key in _RECENCY_KEYS if key in raw}
    if not old:
        return
    half_life = old.get("recency_half_life_days", 30.0)
    if old.get("recency_weight", 0.0) == 0:
        suggestion = 'function = "none" (the boost was off), or leave the table out for the default'
    else:
        suggestion = (
            f'function = "exp", scale_days = {half_life}, offset_days = 0, decay = 0.5 (the same half-life), '
            "and a weight between 0 and 1: the share of the score freshness controls (the old multiplier "
            "has no exact equivalent; 0.3 is the shipped default)"
        )
    problems.append(
        f"ranking: {' and '.join(old)} {'is' if len(old) == 1 else 'are'} gone, replaced by the "
        "[ranking.freshness] table; "
        f"remove them and write under [ranking.freshness]: {suggestion}"
    )


def _freshness(raw: Any, problems: list[str]) -> FreshnessConfig:
    where = "ranking.freshness"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a table")
        return FreshnessConfig()
    known = tuple(FreshnessConfig.__dataclass_fields__)
    unknown = set(raw) - set(known)
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    values = {k: v for k, v in raw.items() if k in known}
    before = len(problems)
    function = values.get("function", FreshnessConfig.function)
    if function not in FRESHNESS_FUNCTIONS:
        names = ", ".join(map(repr, FRESHNESS_FUNCTIONS))
        problems.append(f"{where}.function must be one of {names} (got {function!r})")
    checks = {
        "scale_days": (lambda v: v > 0, "a number of days above 0"),
        "offset_days": (lambda v: v >= 0, "a number of days, 0 or more"),
        "decay": (lambda v: 0 < v < 1, "a number strictly between 0 and 1 (the score at offset + scale)"),
        "weight": (lambda v: 0 <= v <= 1, "a number from 0 (pure relevance) to 1 (only freshness)"),
    }
    for key, (valid, wanted) in checks.items():
        value = values.get(key)
        if value is None:
            continue
        if not _is_number(value) or not valid(value):
            problems.append(f"{where}.{key} must be {wanted} (got {value!r})")
        else:
            values[key] = float(value)
    window = values.get("window")
    if window is not None and (
        not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_FRESHNESS_WINDOW
    ):
        problems.append(
            f"{where}.window must be a whole number of hits from 1 to {MAX_FRESHNESS_WINDOW} (got {window!r})"
        )
    if len(problems) > before:
        return FreshnessConfig()
    return FreshnessConfig(**values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _content(raw: Any, problems: list[str]) -> ContentConfig:
    if isinstance(raw, dict):
        for key in ("drop_sections", "drop_paragraphs"):
            if key in raw and not isinstance(raw[key], list):
                problems.append(f"content.{key} must be a list of strings (got {raw[key]!r})")
                raw = {k: v for k, v in raw.items() if k != key}
    content = _section(ContentConfig, raw, "content", problems)
    for key in ("drop_sections", "drop_paragraphs"):
        for i, value in enumerate(getattr(content, key)):
            where = f"content.{key}[{i}]"
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where} must be a non-empty string (got {value!r})")
            elif key == "drop_paragraphs":
                try:
                    re.compile(value)
                except re.error as exc:
                    problems.append(f"{where}: {value!r} is not a regular expression: {exc}")
                else:
                    if re.search(value, ""):
                        problems.append(f"{where}: {value!r} matches an empty paragraph, so it would drop every one")
    return content


def _check_weights(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value.values()
    ):
        problems.append(f"{where} must be a table of field names and positive numbers (got {value!r})")


def _check_fallback(fields: dict[str, FieldConfig], ranking: RankingConfig, problems: list[str]) -> None:
    """The fallback may weigh the searched fields differently, but must search all of them:
    otherwise a sentence query could miss an article that has all of its words."""
    boosted = ranking.fallback_boosts if isinstance(ranking.fallback_boosts, dict) else {}
    if not boosted:
        return
    searched = sorted(f.name for f in fields.values() if f.boost or f.search_boost)
    for name in boosted:
        if name not in searched:
            problems.append(f"ranking.fallback_boosts: {name!r} is not a searched field (one of {', '.join(searched)})")
    missing = [name for name in searched if name not in boosted]
    if missing:
        problems.append(f"ranking.fallback_boosts must weigh every searched field; missing: {', '.join(missing)}")


def _check_semantic(semantic: SemanticConfig, problems: list[str]) -> None:
    from search_service.semantic.registry import MODELS

    if semantic.model not in MODELS:
        problems.append(f"semantic.model must be one of {', '.join(MODELS)} (got {semantic.model!r})")
    elif not 1 <= semantic.max_tokens <= MODELS[semantic.model].max_tokens:
        problems.append(f"semantic.max_tokens must be 1 to {MODELS[semantic.model].max_tokens}")
    unknown = [f for f in semantic.fields if f not in ARTICLE_ATTRIBUTES]
    if unknown or not semantic.fields:
        problems.append(f"semantic.fields must list article attributes ({', '.join(ARTICLE_ATTRIBUTES)})")
    if semantic.fusion not in ("convex", "rrf"):
        problems.append(f"semantic.fusion must be convex or rrf (got {semantic.fusion!r})")
    if not 0 <= semantic.lexical_weight <= 1:
        problems.append("semantic.lexical_weight must be between 0 and 1")
    names = ("batch_size", "threads", "depth", "ann_min_vectors", "ann_tail_rows", "ann_connectivity")
    for name in (*names, "ann_expansion_add", "ann_expansion_search"):
        if isinstance(getattr(semantic, name), bool) or getattr(semantic, name) < 1:
            problems.append(f"semantic.{name} must be at least 1")


def _counting(raw: Any, problems: list[str]) -> CountingConfig:
    counting = _section(CountingConfig, raw, "counting", problems)
    for name in ("exact_up_to", "sample_size", "date_sample_size"):
        value = getattr(counting, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"[counting].{name} must be a whole number of articles, at least 1 (got {value!r})")
    return counting


def _check_whole(
    fields: dict[str, FieldConfig], snippets: SnippetConfig, ranking: RankingConfig, problems: list[str]
) -> None:
    keys = [f.name for f in fields.values() if f.key]
    if len(keys) != 1:
        problems.append(f"exactly one keyword field must have key = true (found {len(keys)})")
    if not any(f.boost for f in fields.values()):
        problems.append("at least one text field needs a boost to be searched by default")
    for name in snippets.fields:
        f = fields.get(name)
        if f is None or f.kind != "text" or not f.stored:
            problems.append(f"snippets.fields: {name!r} must be a stored text field")
    for attr in ("query_name", "filter_param"):
        seen: dict[str, str] = {}
        for f in fields.values():
            value = getattr(f, attr)
            if value in seen:
                problems.append(f"{attr} {value!r} is used by both {seen[value]} and {f.name}")
            elif value:
                seen[value] = f.name
    _check_fallback(fields, ranking, problems)
    dated = [f for f in fields.values() if f.kind == "date" and f.source == "published_at"]
    if ranking.freshness.enabled and not dated:
        problems.append('ranking.freshness needs a date field built from published_at, or function = "none"')
    histograms = [f.name for f in fields.values() if f.histogram]
    if len(histograms) > 1:
        problems.append(f"only one date field can have histogram = true (found {', '.join(histograms)})")
