"""One normalization of search-box text, shared by curation rules and search analytics.

An editor's rule for "Élection  2026" must fire for a reader who types "election 2026", and the
analytics must count both as one query: case, accents and spacing are folded the same way in both.
"""

from __future__ import annotations

import unicodedata


def normalize_query(text: str) -> str:
    """`text` case-folded, accents removed (é -> e), whitespace runs collapsed to one space, trimmed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(unicodedata.normalize("NFC", folded).split())
