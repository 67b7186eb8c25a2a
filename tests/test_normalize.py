import pytest

from search_service.normalize import normalize_query


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("Election", "election"),
        ("  élection \t 2026 ", "election 2026"),
        ("ZÜRICH", "zurich"),
        ("Straße", "strasse"),
        ("", ""),
        ("東京 電力", "東京 電力"),
    ],
)
def test_normalize_query_folds_case_accents_and_spacing(typed: str, normalized: str) -> None:
    assert normalize_query(typed) == normalized


def test_normalize_query_keeps_words_apart() -> None:
    assert normalize_query("oil prices") != normalize_query("oilprices")
