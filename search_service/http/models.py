"""Response models: they document the API in OpenAPI. Handlers return plain dicts of this shape."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_parameter"])
    message: str = Field(examples=["per_page: Input should be less than or equal to 100"])


class ErrorOut(BaseModel):
    error: ErrorBody


class Highlights(BaseModel):
    title: str = Field(description="HTML-escaped title; matched words in <mark>.")
    snippet: str = Field(description="HTML-escaped window of the text around the best match, with <mark>.")


class Hit(BaseModel):
    slug: str
    title: str
    summary: str
    url: str
    published_at: str = Field(examples=["1987-03-02T14:05:00Z"])
    lang: str
    topics: list[str]
    entities: list[str]
    score: float | None = Field(description="Relevance score; null when sorted by date, or pinned.")
    curated: str | None = Field(None, description="'pinned' when a curation rule placed this hit here.")
    highlights: Highlights | None = Field(None, description="Left out when the search was degraded.")


INTERVAL = (
    "Only on an estimated count: the 95% interval [low, high] of the true count (it holds the true count "
    "19 times in 20)."
)


class FacetValue(BaseModel):
    value: str
    count: int = Field(description="Articles with the value; an estimate when `interval` is given.")
    interval: list[int] | None = Field(None, description=INTERVAL, examples=[[11800, 12900]])


class DateBucket(BaseModel):
    start: str = Field(description="ISO date of the bucket start (UTC).", examples=["1987-03-01"])
    count: int = Field(description="Articles in the bucket; an estimate when `interval` is given.")
    interval: list[int] | None = Field(None, description=INTERVAL, examples=[[310, 402]])


class Exhaustive(BaseModel):
    total: bool = Field(description="`total` is the exact number of matching articles.")
    facets: bool = Field(
        description="Every facet and date count is exact; false when some were estimated from a sample of the "
        "matches (past [counting] exact_up_to; each estimate then has its `interval`). exhaustive=true forces exact."
    )


class Correction(BaseModel):
    word: str = Field(description="The word as typed (lowercased).", examples=["goverment"])
    searched: list[str] = Field(description="The words searched instead.", examples=[["government"]])


class SearchOut(BaseModel):
    total: int = Field(description="Number of matching articles (exact when exhaustive.total).")
    exhaustive: Exhaustive
    page: int
    per_page: int
    took_ms: float
    matched: str = Field(description="'all' when every word had to match, 'any' after the fallback for long queries.")
    sort: str
    cached: bool = Field(description="Served from the result cache (the index has not changed since).")
    degraded: list[str] = Field(description="Parts left out because the search ran over its time budget.")
    semantic: bool = Field(
        False, description="Ranked with the nearest articles by meaning ([semantic] enabled, sort=relevance)."
    )
    hits: list[Hit]
    facets: dict[str, list[FacetValue] | list[DateBucket]]
    date_interval: str | None = Field(description="The date histogram's interval (chosen for date_interval=auto).")
    freshness: bool = Field(
        description="Freshness ranking ordered the hits ([ranking.freshness] on, sort=relevance, not freshness=off)."
    )
    rules: list[str] = Field(default_factory=list, description="Ids of the curation rules applied.")
    query_id: str | None = Field(
        None, description="Names this search in POST /events (opened results); null when analytics are off."
    )
    all_words: int = Field(
        0,
        description="How many articles hold every word. With matched='any' they rank first, on every page, "
        "before those holding only some.",
    )
    corrections: list[Correction] = Field(
        default_factory=list, description="Typed words no article has, and the words searched instead."
    )
    searched_for: str | None = Field(
        None, description="The query as searched when words were corrected ('showing results for'); else null."
    )
    did_you_mean: str | None = Field(
        None,
        description="A likelier spelling, offered (not searched) when few articles hold every typed word "
        "and the respelled query finds at least three times as many.",
    )


class ArticleOut(BaseModel):
    slug: str
    title: str
    summary: str
    body_md: str
    url: str
    canonical_source: str
    published_at: str
    updated_at: str
    lang: str
    topics: list[str]
    entities: list[str]
    alternates: dict[str, str]


class RelatedHit(BaseModel):
    slug: str
    title: str
    url: str
    published_at: str
    score: float


class RelatedOut(BaseModel):
    slug: str
    related: list[RelatedHit]


class FacetValuesOut(BaseModel):
    facet: str
    values: list[FacetValue]
    exhaustive: Exhaustive
    took_ms: float


class Suggestion(BaseModel):
    text: str
    kind: str = Field(description="title, entity, topic or query (a popular past search)")
    count: int


class SuggestOut(BaseModel):
    q: str
    suggestions: list[Suggestion]


class HealthOut(BaseModel):
    status: str


class WritesOut(BaseModel):
    accepted: bool = Field(description="false while writes are refused (a full or read-only file system)")
    reason: str | None = None
    free_bytes: int | None = Field(None, description="free space on the index directory's file system")


class ReadyOut(BaseModel):
    status: str
    documents: int
    last_commit: str | None
    config_version: str | None
    generation: str
    writes: WritesOut | None = Field(None, description="whether the write API accepts writes now (admin key set)")
    problem: str | None = Field(
        None, description='with status "degraded": why the live generation is not the one served (a damaged file)'
    )


class WriteOut(BaseModel):
    slug: str
    result: str = Field(
        description="created, updated, unchanged (identical to the stored article), stale (older updated_at "
        "than the stored one; ?force=true writes it anyway), deleted, or queued (accepted durably while "
        "another writer held the index; applied in order as soon as it is free).",
        examples=["created"],
    )


class RejectOut(BaseModel):
    line: int | None = Field(None, description="1-based line of a JSON Lines body.")
    index: int | None = Field(None, description="0-based position in a JSON array body.")
    slug: str | None
    reason: str = Field(examples=["missing required keys: title"])


class BatchOut(BaseModel):
    read: int = Field(description="Records in the body (blank lines not counted).")
    indexed: int = Field(description="Articles written: created + updated.")
    created: int
    updated: int
    unchanged: int
    stale: int
    queued: int = Field(description="Accepted into the journal (202): applied when the index is free.")
    rejected: list[RejectOut]


class DeleteIn(BaseModel):
    slugs: list[str] = Field(examples=[["reuters-1-bahia-cocoa-review"]])


class DeleteOut(BaseModel):
    read: int
    deleted: int
    queued: int
    missing: list[str] = Field(description="Slugs that were not in the index.")
