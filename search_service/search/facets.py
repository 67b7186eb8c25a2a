"""Exact facet counts and the UTC date histogram, from Tantivy aggregations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from search_service.errors import InvalidParameterError

# Terms aggregations are approximate when a segment returns only its top terms: asking every
# segment for all of its terms (segment_size) makes the merged counts exact. Tantivy orders
# the merged buckets by count, then value, as the API does, so `size` can be the page size.
ALL_TERMS = 50_000
MAX_BUCKETS = 5_000
# date_interval=auto picks the finest interval with at most this many buckets.
AUTO_MOST_BUCKETS = 60
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MS_PER_DAY = 86_400_000


def terms_agg(field: str, size: int = ALL_TERMS) -> dict[str, Any]:
    return {"terms": {"field": field, "size": size, "segment_size": ALL_TERMS}}


def day_histogram_agg(field: str) -> dict[str, Any]:
    return {"date_histogram": {"field": field, "fixed_interval": "1d", "min_doc_count": 1}}


def month_ranges_agg(seconds_field: str, first: date, last: date) -> dict[str, Any]:
    """The calendar months first..last as a range aggregation over a date's seconds field.

    A 1-day histogram over an archive of years has thousands of buckets, and building them costs
    more than counting the articles (10 ms against 2 over 8 years, docs/benchmarks.md); month and
    year counts need only one bucket per month."""
    ranges = []
    start = first.replace(day=1)
    while start <= last:
        end = next_bucket(start, "month")
        ranges.append({"from": _seconds(start), "to": _seconds(end)})
        start = end
    return {"range": {"field": seconds_field, "ranges": ranges}}


def month_counts(result: dict[str, Any]) -> dict[str, Any] | None:
    """A month_ranges_agg result shaped like a day_histogram_agg one: a bucket per month with articles,
    keyed by its first day. None when articles fall in the ranges tantivy adds below the first month
    or above the last: the months asked for did not cover them."""
    buckets = []
    for bucket in result.get("buckets", []):
        if not bucket["doc_count"]:
            continue
        if "from" not in bucket or "to" not in bucket:
            return None
        buckets.append({"key": int(bucket["from"]) * 1000, "doc_count": bucket["doc_count"]})
    return {"buckets": buckets}


def _seconds(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def top_values(
    result: dict[str, Any], size: int, selected: Iterable[str] = (), prefix: str = ""
) -> list[dict[str, Any]]:
    """Values by count then value; selected values are always listed, with their count (0 if none)."""
    counts = {bucket["key"]: bucket["doc_count"] for bucket in result.get("buckets", [])}
    if prefix:
        folded = prefix.casefold()
        counts = {k: v for k, v in counts.items() if k.casefold().startswith(folded)}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    shown = {value for value, _ in ranked}
    ranked.extend((value, counts.get(value, 0)) for value in selected if value not in shown)
    return [{"value": value, "count": count} for value, count in ranked]


def bucket_start(day: date, interval: str) -> date:
    if interval == "year":
        return day.replace(month=1, day=1)
    if interval == "month":
        return day.replace(day=1)
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day


def next_bucket(start: date, interval: str) -> date:
    if interval == "year":
        return start.replace(year=start.year + 1)
    if interval == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=7 if interval == "week" else 1)


def _bucket_count(first: date, last: date, interval: str) -> int:
    days = (last - first).days
    return {"year": days // 365, "month": days // 28, "week": days // 7}.get(interval, days) + 1


def choose_interval(result: dict[str, Any], most: int = AUTO_MOST_BUCKETS) -> str:
    """The finest interval that shows the matching dates in at most `most` buckets."""
    days = [int(bucket["key"]) // MS_PER_DAY for bucket in result.get("buckets", [])]
    if not days:
        return "month"
    first, last = (date.fromordinal(EPOCH_ORDINAL + d) for d in (min(days), max(days)))
    for interval in ("day", "week", "month"):
        if _bucket_count(first, last, interval) <= most:
            return interval
    return "year"


def date_buckets(result: dict[str, Any], interval: str) -> list[dict[str, Any]]:
    """Roll day buckets up into UTC years, months, ISO weeks or days, empty buckets included."""
    counts: dict[date, int] = {}
    start, first_day, end_day = date.min, 0, 0  # the bucket being filled, as day ordinals [first, end)
    for bucket in result.get("buckets", []):
        day = EPOCH_ORDINAL + int(bucket["key"]) // MS_PER_DAY
        if not first_day <= day < end_day:  # day buckets come sorted: most fall in the current one
            start = bucket_start(date.fromordinal(day), interval)
            first_day = start.toordinal()
            end_day = day + 1 if interval == "day" else next_bucket(start, interval).toordinal()
        counts[start] = counts.get(start, 0) + bucket["doc_count"]
    if not counts:
        return []
    out = []
    current, last = min(counts), max(counts)
    if _bucket_count(current, last, interval) > MAX_BUCKETS:
        raise InvalidParameterError(
            "date_interval",
            f"the matching articles span more than {MAX_BUCKETS:,} {interval}s; "
            "use a coarser interval or a published_after/published_before range",
        )
    while current <= last:
        out.append({"start": current.isoformat(), "count": counts.get(current, 0)})
        current = next_bucket(current, interval)
    return out
