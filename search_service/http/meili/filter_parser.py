"""Meilisearch's filter language parsed into a small tree (the grammar of its crates/filter-parser).

    expression = or
    or         = and ("OR" and)*
    and        = not ("AND" not)*
    not        = "NOT" not | primary
    primary    = "(" expression ")" | condition
    condition  = value ("=" | "!=" | ">" | ">=" | "<" | "<=") value
               | value value "TO" value
               | value ["NOT"] "IN" "[" value ("," value)* [","] "]"
               | value ["NOT"] "EXISTS"
               | value "IS" ["NOT"] ("NULL" | "EMPTY")
    value      = word | 'single quoted' | "double quoted"      (\\ escapes the quote)

Keywords are upper case, as in Meilisearch. The `filter` parameter may also be an array: its
items are ANDed, and an item that is itself an array ORs its strings (`[["a = 1", "a = 2"], "b = 3"]`).
Errors carry the character position, like Meilisearch's `invalid_search_filter` messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset({"AND", "OR", "NOT", "TO", "IN", "EXISTS", "IS", "NULL", "EMPTY"})
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
# Characters that end an unquoted word.
_BREAKS = frozenset(" \t\r\n()[],=!<>'\"")


class FilterSyntaxError(ValueError):
    def __init__(self, message: str, filter_text: str, start: int, end: int | None = None) -> None:
        end = max(start + 1, end if end is not None else start + 1)
        super().__init__(f"{message}\n{start + 1}:{min(end, len(filter_text)) + 1} {filter_text}")
        self.position = start


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    quoted: bool = False
    punct: bool = False

    def keyword(self, word: str) -> bool:
        return not self.quoted and not self.punct and self.text == word


@dataclass(frozen=True)
class Compare:
    attribute: str
    op: str  # one of OPERATORS
    value: str
    position: int


@dataclass(frozen=True)
class Between:
    attribute: str
    low: str
    high: str
    position: int


@dataclass(frozen=True)
class In:
    attribute: str
    values: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class Exists:
    attribute: str
    position: int


@dataclass(frozen=True)
class IsNull:
    attribute: str
    position: int


@dataclass(frozen=True)
class IsEmpty:
    attribute: str
    position: int


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Compare | Between | In | Exists | IsNull | IsEmpty | Not | And | Or


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()[],":
            tokens.append(Token(ch, i, i + 1, punct=True))
            i += 1
        elif ch in "=!<>":
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise FilterSyntaxError("Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`", text, i)
            tokens.append(Token(op, i, i + len(op), punct=True))
            i += len(op)
        elif ch in "'\"":
            value, end = _quoted(text, i)
            tokens.append(Token(value, i, end, quoted=True))
            i = end
        else:
            start = i
            while i < n and text[i] not in _BREAKS:
                i += 1
            tokens.append(Token(text[start:i], start, i))
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterSyntaxError(
        f"Expression `{text[start:]}` is missing the following closing delimiter: `{quote}`.", text, start, len(text)
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("Was expecting a value but instead got nothing.", len(self.text))
        self.i += 1
        return token

    def error(self, message: str, start: int, end: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, self.text, start, end)

    def at(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.keyword(word)

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("Sending an empty filter is forbidden.", 0)
        node = self.parse_or()
        extra = self.peek()
        if extra is not None:
            raise self.error(
                "Found unexpected characters at the end of the filter: "
                f"`{self.text[extra.start :]}`. You probably forgot an `OR` or an `AND` rule.",
                extra.start,
                len(self.text),
            )
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.at("OR"):
            self.i += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.at("AND"):
            self.i += 1
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_not(self) -> Node:
        if self.at("NOT"):
            self.i += 1
            return Not(self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.peek()
        if token is not None and token.punct and token.text == "(":
            self.i += 1
            node = self.parse_or()
            close = self.peek()
            if close is None or not (close.punct and close.text == ")"):
                raise self.error(
                    f"Expression `{self.text[token.start :]}` is missing the following closing delimiter: `)`.",
                    token.start,
                    len(self.text),
                )
            self.i += 1
            return node
        return self.parse_condition()

    def value(self, what: str = "a value") -> Token:
        token = self.peek()
        if token is None:
            raise self.error(f"Was expecting {what} but instead got nothing.", len(self.text))
        if token.punct or (not token.quoted and token.text in KEYWORDS):
            raise self.error(
                f"Was expecting {what} but instead got `{token.text}`."
                + (" Reserved keywords must be quoted." if token.text in KEYWORDS else ""),
                token.start,
                token.end,
            )
        self.i += 1
        return token

    def parse_condition(self) -> Node:
        attr = self.value("a value")
        position = attr.start
        name = attr.text
        token = self.peek()
        if token is None:
            raise self.error(_EXPECTED_OP, attr.start, attr.end)
        if token.punct and token.text in OPERATORS:
            self.i += 1
            return Compare(name, token.text, self.value().text, position)
        if self.at("EXISTS"):
            self.i += 1
            return Exists(name, position)
        if self.at("IN"):
            self.i += 1
            return In(name, self.value_list(), position)
        if self.at("NOT") and (self.at("EXISTS", 1) or self.at("IN", 1)):
            self.i += 1
            return Not(self.parse_condition_after(name, position))
        if self.at("IS"):
            self.i += 1
            negate = self.at("NOT")
            if negate:
                self.i += 1
            what = self.take()
            if what.keyword("NULL"):
                node: Node = IsNull(name, position)
            elif what.keyword("EMPTY"):
                node = IsEmpty(name, position)
            else:
                raise self.error("Was expecting `NULL` or `EMPTY` after `IS`.", what.start, what.end)
            return Not(node) if negate else node
        if not token.punct and (token.quoted or token.text not in KEYWORDS) and self.at("TO", 1):
            low = self.value().text
            self.i += 1  # TO
            return Between(name, low, self.value().text, position)
        raise self.error(_EXPECTED_OP, attr.start, token.end)

    def parse_condition_after(self, name: str, position: int) -> Node:
        if self.at("EXISTS"):
            self.i += 1
            return Exists(name, position)
        self.i += 1  # IN
        return In(name, self.value_list(), position)

    def value_list(self) -> tuple[str, ...]:
        open_ = self.peek()
        if open_ is None or not (open_.punct and open_.text == "["):
            at = open_.start if open_ else len(self.text)
            raise self.error("Expected `[` after `IN` keyword.", at)
        self.i += 1
        values: list[str] = []
        while True:
            token = self.peek()
            if token is not None and token.punct and token.text == "]":
                self.i += 1
                return tuple(values)
            values.append(self.value().text)
            sep = self.peek()
            if sep is not None and sep.punct and sep.text == ",":
                self.i += 1
                continue
            if sep is None or not (sep.punct and sep.text == "]"):
                raise self.error(
                    f"Expected matching `]` after the list of values in `{self.text[open_.start :]}`.",
                    open_.start,
                    len(self.text),
                )


_EXPECTED_OP = (
    "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, "
    "`NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `_geoRadius`, or `_geoBoundingBox`"
)


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


def parse_filter_param(value: Any) -> Node | None:
    """The `filter` of a request: a string, or an array (outer AND, inner OR); None for no filter.

    Raises FilterSyntaxError, or TypeError naming what was wrong with the shape."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_filter(value) if value.strip() else None
    if not isinstance(value, list):
        raise TypeError("`filter` must be a string, an array of strings, or an array of arrays of strings")
    parts: list[Node] = []
    for item in value:
        if isinstance(item, str):
            if item.strip():
                parts.append(parse_filter(item))
        elif isinstance(item, list):
            if not all(isinstance(s, str) for s in item):
                raise TypeError("the arrays inside `filter` must hold strings only")
            inner = [parse_filter(s) for s in item if s.strip()]
            if inner:
                parts.append(inner[0] if len(inner) == 1 else Or(tuple(inner)))
        else:
            raise TypeError("`filter` arrays may hold strings and arrays of strings only")
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))
