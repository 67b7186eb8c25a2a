"""The synonym set as editors send it: the input model and its validation (a 422 changes nothing).

A group without `root` is multi-way (each word finds the others); with `root` it is one-way
(the root finds the words, not the reverse). Words are checked as the index analyzes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from search_service.errors import Problems

# A synonym is a word or a short phrase: longer ones are almost certainly a paste error.
MAX_SYNONYM_TOKENS = 5
MAX_WORD_CHARS = 200

Tokenize = Callable[[str], list[str]]


class SynonymGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = Field(None, description="One-way: searching the root also finds the words, not the reverse.")
    words: list[str] = Field(description="Multi-way without a root: each word finds the others.")


class SynonymSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    synonyms: list[SynonymGroupIn]
    version: int | None = Field(None, description="When given, the live version this edit was based on (else 409).")
    updated_at: str | None = Field(None, description="Ignored: GET's output can be PUT back as it is.")


@dataclass(frozen=True)
class SynonymLimits:
    max_groups: int = 1000
    max_words: int = 20


def validate_synonyms(payload: SynonymSetIn, limits: SynonymLimits, tokenize: Tokenize) -> list[dict[str, Any]]:
    """The groups as stored (words trimmed, duplicates dropped); a 422 naming every problem."""
    problems = Problems()
    if len(payload.synonyms) > limits.max_groups:
        problems.add("synonyms", f"at most {limits.max_groups} groups (got {len(payload.synonyms)})")
    out = []
    for i, group in enumerate(payload.synonyms):
        where = f"synonyms[{i}]"
        typed = [_word(f"{where}.words[{j}]", w, tokenize, problems) for j, w in enumerate(group.words)]
        words = list(dict.fromkeys(w for w in typed if w is not None))
        if None in typed:
            continue  # a bad word is reported; the group's shape is judged once its words are fixed
        if not words:
            problem = "a root without words" if group.root is not None else "an empty group"
            problems.add(f"{where}.words", f"{problem}: give at least one word")
            continue
        if len(words) > limits.max_words:
            problems.add(f"{where}.words", f"at most {limits.max_words} words in a group")
        if group.root is None:
            if len(words) < 2:
                problems.add(f"{where}.words", "a multi-way group needs at least two different words (or give a root)")
            out.append({"words": words})
            continue
        root = _word(f"{where}.root", group.root, tokenize, problems)
        if root is None:
            continue
        words = [w for w in words if tokenize(w) != tokenize(root)]
        if not words:
            problems.add(f"{where}.words", "a root without words: the only word is the root itself")
        out.append({"root": root, "words": words})
    problems.raise_any()
    return out


def _word(where: str, word: str, tokenize: Tokenize, problems: Problems) -> str | None:
    word = " ".join(word.split())
    if not word:
        problems.add(where, "empty word")
    elif len(word) > MAX_WORD_CHARS:
        problems.add(where, f"at most {MAX_WORD_CHARS} characters")
    elif not (tokens := tokenize(word)):
        problems.add(where, f"{word[:40]!r} has no searchable word")
    elif len(tokens) > MAX_SYNONYM_TOKENS:
        problems.add(where, f"at most {MAX_SYNONYM_TOKENS} words in one synonym")
    else:
        return word
    return None
