"""What an article embeds as, the key that names its vector, and the query as the model reads it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_service.semantic.registry import ModelSpec


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
