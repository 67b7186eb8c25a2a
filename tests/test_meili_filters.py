"""Meilisearch's filter language: the parser's tree, quoting and escapes, and errors with positions."""

from __future__ import annotations

import pytest

from search_service.http.meili.filter_parser import (
    And,
    Between,
    Compare,
    Exists,
    FilterSyntaxError,
    In,
    IsEmpty,
    IsNull,
    Not,
    Or,
    parse_filter,
    parse_filter_param,
)


def test_precedence_not_binds_tighter_than_and_than_or():
    tree = parse_filter("a = 1 OR NOT b = 2 AND c = 3")
    assert tree == Or((Compare("a", "=", "1", 0), And((Not(Compare("b", "=", "2", 13)), Compare("c", "=", "3", 23)))))


def test_parentheses_quotes_and_escapes():
    tree = parse_filter('("my attr" = \'it\\\'s\' OR title = "say \\"hi\\"") AND n != x')
    assert tree == And(
        (
            Or((Compare("my attr", "=", "it's", 1), Compare("title", "=", 'say "hi"', 24))),
            Compare("n", "!=", "x", 50),
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d 1 TO 5", Between("d", "1", "5", 0)),
        ("t IN [a, 'b c', \"d\",]", In("t", ("a", "b c", "d"), 0)),
        ("t NOT IN [a]", Not(In("t", ("a",), 0))),
        ("t EXISTS", Exists("t", 0)),
        ("t NOT EXISTS", Not(Exists("t", 0))),
        ("t IS NULL", IsNull("t", 0)),
        ("t IS NOT EMPTY", Not(IsEmpty("t", 0))),
        ("d >= 2024-01-01T00:00:00Z", Compare("d", ">=", "2024-01-01T00:00:00Z", 0)),
        ("d<=5", Compare("d", "<=", "5", 0)),
    ],
)
def test_every_operator(text, expected):
    assert parse_filter(text) == expected


def test_arrays_and_their_inner_arrays():
    tree = parse_filter_param([["a = 1", "a = 2"], "b = 3", ""])
    assert tree == And((Or((Compare("a", "=", "1", 0), Compare("a", "=", "2", 0))), Compare("b", "=", "3", 0)))
    assert parse_filter_param([]) is None and parse_filter_param("  ") is None
    with pytest.raises(TypeError):
        parse_filter_param([1])


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("a = 1 AND", 9),
        ("a = 1 b = 2", 6),
        ("(a = 1", 0),
        ("a = 'open", 4),
        ("a IN [1, 2", 5),
        ("a", 0),
        ("a ! 1", 2),
        ("AND = 1", 0),
    ],
)
def test_errors_name_their_position(text, position):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert f"{position + 1}:" in str(caught.value)
