"""The import format: one article, validated and normalized, or one reason listing every problem."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)

from search_service.config import Limits
from search_service.errors import json_path

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LANG_RE = re.compile(r"([a-zA-Z]{2,3})((?:-[a-zA-Z0-9]{1,8})*)")
# Checked by pydantic's Rust core (no Python call per URL): http(s), a host, no whitespace or controls.
URL_PATTERN = r"^(?i:https?)://[^\s/?#\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*$"
# C0 controls except tab and newline, DEL, and the zero-width characters that only hide text.
# Zero-width (non-)joiners stay: emoji sequences and Indic/Persian scripts need them.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b\u2060\ufeff]")
# The same characters as bytes, for ASCII texts: bytes.translate() deleting them is a tight C loop,
# about three times cheaper than the regex scan on a multi-line body (which is never printable).
_UNWANTED_ASCII = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
_STRIP = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x200B, 0x2060, 0xFEFF], None)


# Tantivy stores dates as nanoseconds in a signed 64-bit integer.
MIN_DATE = datetime(1678, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2261, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass
class ImportContext:
    """What validators need and report beyond the record itself."""

    limits: Limits
    warnings: list[str] = field(default_factory=list)


def _context(info: ValidationInfo) -> ImportContext:
    return info.context["import"]


def clean_text(value: str) -> str:
    """NFC, no hidden control or zero-width characters, CRLF as LF, trimmed."""
    if value.isascii():
        if value.isprintable() or not _has_unwanted_ascii(value):
            return value.strip()
    else:
        value = unicodedata.normalize("NFC", value)
        # Most texts only have newlines: a regex scan is much cheaper than translate() on every one.
        if _UNWANTED.search(value) is None:
            return value.strip()
    return value.replace("\r\n", "\n").replace("\r", "\n").translate(_STRIP).strip()


def _has_unwanted_ascii(value: str) -> bool:
    """Whether an ASCII text holds a character of _UNWANTED: deleting them shortens it."""
    return len(value.encode().translate(None, _UNWANTED_ASCII)) != len(value)


def _clean_line(value: str) -> str:
    # Printable ASCII has no whitespace but spaces: without a double one, trimming is all there is to do.
    if value.isascii() and value.isprintable() and "  " not in value:
        return value.strip()
    return " ".join(clean_text(value).split())


def _title(value: str, info: ValidationInfo) -> str:
    value = _clean_line(value)
    if not value:
        raise ValueError("must not be empty")
    limit = _context(info).limits.max_title_chars
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long (limit {limit})")
    return value


def _summary(value: str, info: ValidationInfo) -> str:
    value = clean_text(value)
    limit = _context(info).limits.max_summary_chars
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long (limit {limit})")
    return value


def _body(value: str, info: ValidationInfo) -> str:
    limit = _context(info).limits.max_body_bytes
    # A character is at most 4 bytes: only a body near the limit needs encoding to be measured.
    if len(value) * 4 > limit:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise ValueError(f"is {size:,} bytes (limit {limit:,})")
    return clean_text(value)


def _slug(value: str, info: ValidationInfo) -> str:
    limit = _context(info).limits.max_slug_chars
    if not SLUG_RE.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a valid slug (lowercase a-z, 0-9 and single hyphens)")
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long (limit {limit})")
    return value


def _lang(value: str) -> str:
    # A corpus uses a handful of language codes: each is parsed once. Only short values are cached
    # (rejections never are), so odd input cannot keep large strings in memory.
    return _cached_lang_code(value) if len(value) <= 64 else _lang_code(value)


def _lang_code(value: str) -> str:
    match = LANG_RE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value[:40]!r} is not a language code (expected BCP 47, like 'en' or 'pt-BR')")
    subtags = [_subtag_case(s) for s in match.group(2).split("-")[1:]]
    return "-".join([match.group(1).lower(), *subtags])


_cached_lang_code = lru_cache(maxsize=256)(_lang_code)


def _subtag_case(subtag: str) -> str:
    """BCP 47 casing: regions upper case (BR), scripts title case (Hant), the rest lower case."""
    if len(subtag) == 2 and subtag.isalpha():
        return subtag.upper()
    if len(subtag) == 4 and subtag.isalpha():
        return subtag.title()
    return subtag.lower()


def _date(value: Any, info: ValidationInfo) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 string with offset, got {_json_type(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a date: expected ISO 8601 with offset") from None
    if parsed.tzinfo is None:
        _context(info).warnings.append(f"{info.field_name} {value!r} has no timezone; assumed UTC")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        parsed = MIN_DATE - timedelta(days=1)
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise ValueError(f"{value[:40]!r} is outside the dates the index can hold ({MIN_DATE.year}-{MAX_DATE.year})")
    return parsed


def _facet_values(values: list[str], info: ValidationInfo) -> list[str]:
    if not values:  # most articles have no topics or no entities: nothing to clean or count
        return []
    limits = _context(info).limits
    limit = limits.max_topics if info.field_name == "topics" else limits.max_entities
    # Distinct values in first-seen order; dropping "" afterwards is cheaper than filtering in a generator.
    cleaned = dict.fromkeys(map(_clean_line, values))
    cleaned.pop("", None)
    if len(cleaned) > limit:
        raise ValueError(f"too many {info.field_name} ({len(cleaned)} > limit {limit})")
    too_long = [v for v in cleaned if len(v) > limits.max_facet_value_chars]
    if too_long:
        raise ValueError(f"value {too_long[0][:40]!r}… is longer than {limits.max_facet_value_chars} characters")
    return list(cleaned)


Text = Annotated[str, Strict()]
Date = Annotated[datetime, BeforeValidator(_date)]
FacetValues = Annotated[list[Text], AfterValidator(_facet_values)]
Url = Annotated[Text, StringConstraints(strip_whitespace=True, pattern=URL_PATTERN)]


class Article(BaseModel):
    """One article of the import format; unknown keys are ignored for forward compatibility."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    slug: Annotated[Text, AfterValidator(_slug)]
    title: Annotated[Text, AfterValidator(_title)]
    summary: Annotated[Text, AfterValidator(_summary)]
    body_md: Annotated[Text, AfterValidator(_body)]
    url: Url
    canonical_source: Url
    published_at: Date
    updated_at: Date
    lang: Annotated[Text, AfterValidator(_lang)]
    topics: FacetValues
    entities: FacetValues
    alternates: dict[Annotated[Text, StringConstraints(strip_whitespace=True)], Url]


_VALIDATE = Article.__pydantic_validator__.validate_python


class RecordRejected(Exception):
    def __init__(self, reason: str, slug: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.slug = slug


def parse_article(data: Any, context: ImportContext) -> Article:
    """Validate one decoded JSON value; raise RecordRejected naming every problem at once."""
    if not isinstance(data, dict):
        raise RecordRejected(f"record must be a JSON object, got {_json_type(data)}")
    try:
        # The schema validator itself: model_validate() only adds argument handling around it.
        return _VALIDATE(data, context={"import": context})
    except ValidationError as exc:
        slug = data.get("slug") if isinstance(data.get("slug"), str) else None
        raise RecordRejected(describe_errors(exc), slug) from None


def describe_errors(exc: ValidationError) -> str:
    missing = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"]
    parts = [f"missing required keys: {', '.join(missing)}"] if missing else []
    for error in exc.errors():
        if error["type"] == "missing":
            continue
        where = json_path(error["loc"])
        parts.append(f"{where}: {_message(error)}")
    return "; ".join(parts)


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "string_pattern_mismatch":  # only URLs have a pattern
        return f"{str(error['input'])[:80]!r} is not an http(s) URL"
    expected = {
        "string_type": "expected a string",
        "list_type": "expected a list of strings",
        "dict_type": "expected an object of strings",
    }.get(error["type"])
    if expected:
        return f"{expected}, got {_json_type(error['input'])}"
    return error["msg"]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
