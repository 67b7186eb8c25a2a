"""Reading import input: files, directories and stdin holding JSON Lines, one JSON value, or an array.

The layout is decided by content, not by file name. JSON Lines are decoded line by line, so one
bad line (invalid JSON, invalid UTF-8) loses only itself. Every item carries its source and
1-based physical line so a reject can be reported precisely.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from search_service.errors import InputError

BOM = b"\xef\xbb\xbf"
# Records of a document read before deciding whether it is JSON Lines with broken first lines.
DOCUMENT_LOOKAHEAD = 1_000
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Item:
    source: str
    line: int
    value: Any = None
    error: str | None = None
    skipped: bool = False


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files in the order given, directories recursively in name order; fail on what cannot be read."""
    found: list[str] = []
    for path in paths:
        if path == STDIN:
            found.append(STDIN)
        elif os.path.isdir(path):
            inside = []
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                inside.extend(os.path.join(root, f) for f in files if not f.startswith("."))
            found.extend(sorted(inside))
        elif os.path.isfile(path):
            if not os.access(path, os.R_OK):
                raise InputError(f"cannot read {path}: permission denied")
            found.append(path)
        else:
            raise InputError(f"cannot read {path}: no such file or directory")
    return found


def read_items(paths: Iterable[str]) -> Iterator[Item]:
    for path in expand_paths(paths):
        if path == STDIN:
            yield from read_stream(sys.stdin.buffer, "<stdin>")
            continue
        try:
            with open(path, "rb") as stream:
                yield from read_stream(stream, path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc


def read_lines(data: bytes, source: str) -> Iterator[Item]:
    """JSON Lines held in memory (an HTTP body), split and decoded exactly like a file's lines."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    for number, line in enumerate(io.BytesIO(data), start=1):
        yield _decode_line(line, source, number)


def read_stream(stream: BinaryIO, source: str) -> Iterator[Item]:
    first = stream.readline()
    if first.startswith(BOM):
        first = first[len(BOM) :]
    following = _peek_lines(stream)
    if _is_document(first, following):
        yield from _read_document_or_lines(first + b"".join(following) + stream.read(), source)
        return
    for number, line in enumerate([first, *following], start=1):
        yield _decode_line(line, source, number)
    for number, line in enumerate(stream, start=len(following) + 2):
        yield _decode_line(line, source, number)


def _peek_lines(stream: BinaryIO) -> list[bytes]:
    """The lines after the first, up to and including the next non-blank one."""
    lines = []
    for line in stream:
        lines.append(line)
        if line.strip():
            break
    return lines


def _is_document(first: bytes, following: list[bytes]) -> bool:
    """Whether the input is one JSON document (pretty-printed object(s), or an array) rather than lines.

    JSON Lines has a record start on its next non-blank line; a pretty-printed object continues
    with a key. A complete value on the first line is JSON Lines, unless it is the only line.
    """
    head = first.lstrip()
    if not head.startswith((b"{", b"[")):
        return False
    next_line = following[-1].lstrip() if following and following[-1].strip() else b""
    if head.rstrip() != b"[" and next_line.startswith(b"{") and _is_complete_json(next_line):
        # A record on a line of its own follows: JSON Lines whose first line is broken. Read as
        # one document, that line would cost every record after it.
        return False
    if _is_complete_json(first):
        return not next_line and head.startswith(b"[")
    return head.startswith(b"[") or not next_line.startswith(b"{")


def _is_complete_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _decode_line(line: bytes, source: str, number: int) -> Item:
    # JSON allows the trailing \r\n as whitespace: no copy of the line to strip it.
    if not line or line.isspace():
        return Item(source, number, skipped=True, error="blank line")
    try:
        return Item(source, number, orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        return Item(source, number, error=_json_error(str(exc)))


def _json_error(message: str) -> str:
    if "not valid UTF-8" in message:
        return "invalid UTF-8: the line is not UTF-8 encoded text"
    if "surrogate" in message:
        return f"invalid Unicode: {message}"
    return f"invalid JSON: {message}"


def _read_document_or_lines(data: bytes, source: str) -> Iterator[Item]:
    """One document, unless it breaks off early and reading it as JSON Lines keeps more records.

    Broken first lines can make JSON Lines look like a document; read as one, the first error
    would cost every record after it. Only the first DOCUMENT_LOOKAHEAD records are held while
    deciding, so a large, valid array streams.
    """
    document = _read_document(data, source)
    items = list(itertools.islice(document, DOCUMENT_LOOKAHEAD))
    if not items or items[-1].error is None or data.count(b"\n") < 2:
        yield from items
        yield from document
        return
    kept = sum(1 for item in items if isinstance(item.value, dict))
    lines = data.splitlines(keepends=True)
    if sum(1 for line in lines if line.lstrip().startswith(b"{") and _is_complete_json(line)) > kept:
        for number, line in enumerate(lines, start=1):
            yield _decode_line(line, source, number)
    else:
        yield from items


def _read_document(data: bytes, source: str) -> Iterator[Item]:
    """A JSON array of records, or one or more whole JSON values, with line numbers from offsets."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield Item(source, line, error=f"invalid UTF-8 at byte {exc.start}; the rest of {source} was not read")
        return
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    in_array = text.startswith("[", pos)
    if in_array:
        pos = _skip_space(text, pos + 1)
    while pos < len(text):
        if in_array and text.startswith("]", pos):
            pos = _skip_space(text, pos + 1)
            in_array = False
            continue
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Item(
                source,
                exc.lineno,
                error=f"invalid JSON: {exc.msg} (column {exc.colno}); the rest of {source} was not read",
            )
            return
        except RecursionError:
            yield Item(source, line, error=f"invalid JSON: nested too deeply; the rest of {source} was not read")
            return
        yield _checked(value, source, line)
        pos = _skip_space(text, end)
        if in_array and text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
    if in_array:
        yield Item(source, text.count("\n") + 1, error=f"invalid JSON: the array in {source} is not closed")


def _checked(value: Any, source: str, line: int) -> Item:
    # The stdlib decoder accepts lone surrogate escapes, which cannot be stored as UTF-8, and
    # nesting deeper than the rest of the pipeline handles.
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        kind = "invalid Unicode" if "surrogate" in str(exc) else "invalid JSON"
        return Item(source, line, error=f"{kind}: {exc}")
    return Item(source, line, value)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
