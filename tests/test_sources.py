"""read_items: JSON Lines, whole JSON documents, directories and stdin, with exact line numbers."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from search_service.errors import InputError
from search_service.ingest import sources
from search_service.ingest.sources import Item, read_items


def record(n: int) -> dict:
    return {"slug": f"article-{n}", "title": f"Title {n}"}


def line(n: int) -> bytes:
    return json.dumps(record(n)).encode()


def items(*paths: str | Path) -> list[Item]:
    return list(read_items([str(p) for p in paths]))


def summary(found: list[Item]) -> list[tuple[int, str]]:
    """(line, what) per item: the slug of a record, 'skipped', or 'error'."""
    out = []
    for item in found:
        if item.skipped:
            out.append((item.line, "skipped"))
        elif item.error is not None:
            out.append((item.line, "error"))
        else:
            out.append((item.line, item.value["slug"]))
    return out


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_with_bom_and_crlf_reads_every_record(tmp_path: Path):
    path = write(tmp_path / "a.jsonl", b"\xef\xbb\xbf" + b"\r\n".join(line(n) for n in range(1, 4)) + b"\r\n")
    found = items(path)
    assert summary(found) == [(1, "article-1"), (2, "article-2"), (3, "article-3")]
    assert [item.value for item in found] == [record(1), record(2), record(3)]
    assert all(item.source == str(path) for item in found)


def test_blank_lines_are_skipped_items_with_their_line_numbers(tmp_path: Path):
    path = write(tmp_path / "a.jsonl", line(1) + b"\n\n   \n" + line(4) + b"\n\t\r\n" + line(6) + b"\n")
    found = items(path)
    assert summary(found) == [
        (1, "article-1"),
        (2, "skipped"),
        (3, "skipped"),
        (4, "article-4"),
        (5, "skipped"),
        (6, "article-6"),
    ]
    assert all(item.error == "blank line" for item in found if item.skipped)


def test_one_invalid_line_does_not_lose_the_others(tmp_path: Path):
    lines = [line(1), line(2), b'{"slug": "truncated', line(4), b"{'python': 'repr'}", line(6), line(7) + line(8)]
    path = write(tmp_path / "a.jsonl", b"\n".join(lines) + b"\n")
    found = items(path)
    assert summary(found) == [
        (1, "article-1"),
        (2, "article-2"),
        (3, "error"),
        (4, "article-4"),
        (5, "error"),
        (6, "article-6"),
        (7, "error"),
    ]
    assert all(item.error.startswith("invalid JSON") for item in found if item.error)


def test_last_line_without_newline_is_read(tmp_path: Path):
    assert summary(items(write(tmp_path / "a.jsonl", line(1) + b"\n" + line(2)))) == [
        (1, "article-1"),
        (2, "article-2"),
    ]


def test_invalid_utf8_line_is_rejected_alone(tmp_path: Path):
    latin1 = '{"slug": "caf\xe9", "title": "\xc9t\xe9"}'.encode("latin-1")
    path = write(tmp_path / "a.jsonl", b"\n".join([line(1), latin1, line(3)]) + b"\n")
    found = items(path)
    assert summary(found) == [(1, "article-1"), (2, "error"), (3, "article-3")]
    assert found[1].error.startswith("invalid UTF-8")


def test_lone_surrogate_escape_is_rejected_as_invalid_unicode(tmp_path: Path):
    path = write(tmp_path / "a.jsonl", b"\n".join([line(1), b'{"slug": "x", "title": "\\ud800"}', line(3)]) + b"\n")
    found = items(path)
    assert summary(found) == [(1, "article-1"), (2, "error"), (3, "article-3")]
    assert found[1].error.startswith("invalid Unicode")


@pytest.mark.parametrize(
    "first",
    [b'{"slug": "truncated', b'{"slug": "caf\xe9"}'],
    ids=["truncated-json", "invalid-utf8"],
)
def test_invalid_first_line_does_not_lose_the_others(tmp_path: Path, first: bytes):
    path = write(tmp_path / "a.jsonl", b"\n".join([first, line(2), line(3)]) + b"\n")
    assert summary(items(path)) == [(1, "error"), (2, "article-2"), (3, "article-3")]


@pytest.mark.parametrize(
    "first, second",
    [(b"[" * 5000 + b"]" * 5000, b'{"slug": ' + b"[" * 5000 + b"]" * 5000 + b"}"), (b"[1, 2", b'{"slug": "cut')],
    ids=["nested-too-deeply", "truncated"],
)
def test_broken_first_lines_that_look_like_an_array_do_not_lose_the_records_after_them(
    tmp_path: Path, first: bytes, second: bytes
):
    path = write(tmp_path / "a.jsonl", b"\n".join([first, second, line(3), line(4)]) + b"\n")
    assert summary(items(path)) == [(1, "error"), (2, "error"), (3, "article-3"), (4, "article-4")]


# -- whole JSON documents -----------------------------------------------------------------------


def test_pretty_printed_single_object_is_one_record_at_line_1(tmp_path: Path, seed_record):
    path = write(tmp_path / "seed.json", json.dumps(seed_record, indent=2).encode())
    found = items(path)
    assert len(found) == 1
    assert found[0].line == 1
    assert found[0].error is None
    assert found[0].value == seed_record


def test_pretty_printed_objects_one_after_another_each_carry_their_line(tmp_path: Path):
    first, second = json.dumps(record(1), indent=2), json.dumps(record(2), indent=2)
    path = write(tmp_path / "two.json", f"{first}\n{second}\n".encode())
    assert summary(items(path)) == [(1, "article-1"), (first.count("\n") + 2, "article-2")]


def test_json_array_yields_each_element_with_its_line(tmp_path: Path):
    text = "[\n" + ",\n".join(json.dumps(record(n)) for n in range(1, 4)) + "\n]\n"
    assert summary(items(write(tmp_path / "a.json", text.encode()))) == [
        (2, "article-1"),
        (3, "article-2"),
        (4, "article-3"),
    ]


def test_indented_json_array_with_bom_and_crlf_yields_each_element_with_its_line(tmp_path: Path):
    text = json.dumps([record(1), record(2)], indent=2)
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    # element n starts on the line holding its opening brace
    starts = [i + 1 for i, row in enumerate(text.splitlines()) if row.strip() == "{"]
    assert summary(items(write(tmp_path / "a.json", data))) == [(starts[0], "article-1"), (starts[1], "article-2")]


def test_json_array_on_one_line_yields_every_element(tmp_path: Path):
    path = write(tmp_path / "a.json", json.dumps([record(1), record(2)]).encode())
    assert summary(items(path)) == [(1, "article-1"), (1, "article-2")]


def test_unclosed_json_array_is_an_error_after_the_good_elements(tmp_path: Path):
    path = write(tmp_path / "a.json", ("[\n" + json.dumps(record(1)) + ",\n").encode())
    found = items(path)
    assert summary(found) == [(2, "article-1"), (3, "error")]
    assert "not closed" in found[1].error


def test_json_array_with_one_element_per_line_is_still_one_document(tmp_path: Path):
    path = write(tmp_path / "a.json", b"[\n" + line(1) + b"\n]\n")
    assert summary(items(path)) == [(2, "article-1")]


def test_json_array_longer_than_the_lookahead_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sources, "DOCUMENT_LOOKAHEAD", 3)
    text = "[\n" + ",\n".join(json.dumps(record(n)) for n in range(1, 11)) + "\n]\n"
    assert summary(items(write(tmp_path / "a.json", text.encode()))) == [(n + 1, f"article-{n}") for n in range(1, 11)]


def test_json_array_breaking_off_after_the_lookahead_stays_one_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sources, "DOCUMENT_LOOKAHEAD", 3)
    # Read as lines, the six records after the break would outnumber the five before it.
    after = "".join(line(n).decode() + "\n" for n in range(7, 13))
    text = "[\n" + ",\n".join(json.dumps(record(n)) for n in range(1, 6)) + ",\n{broken\n" + after
    found = items(write(tmp_path / "a.json", text.encode()))
    assert summary(found) == [*((n + 1, f"article-{n}") for n in range(1, 6)), (7, "error")]
    assert "the rest of" in found[-1].error


def test_json_document_nested_too_deeply_is_an_error_not_a_crash(tmp_path: Path):
    path = write(tmp_path / "a.json", b"[\n" + line(1) + b",\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n]\n")
    found = items(path)
    assert summary(found) == [(2, "article-1"), (3, "error")]
    assert "nested too deeply" in found[1].error


# -- directories, stdin, missing paths ----------------------------------------------------------


def test_directory_is_read_recursively_skipping_hidden_entries(tmp_path: Path):
    root = tmp_path / "in"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a").mkdir()
    (root / ".hidden").mkdir()
    write(root / "z.jsonl", line(5) + b"\n")
    write(root / "a" / "one.jsonl", line(1) + b"\n" + line(2) + b"\n")
    write(root / "b" / "deeper" / "three.jsonl", line(4) + b"\n")
    write(root / "b" / "two.json", json.dumps([record(3)]).encode())
    write(root / ".hidden" / "x.jsonl", line(99) + b"\n")
    write(root / ".dotfile.jsonl", line(98) + b"\n")
    found = items(root)
    assert sorted(
        (Path(item.source).relative_to(root).as_posix(), item.line, item.value["slug"]) for item in found
    ) == [
        ("a/one.jsonl", 1, "article-1"),
        ("a/one.jsonl", 2, "article-2"),
        ("b/deeper/three.jsonl", 1, "article-4"),
        ("b/two.json", 1, "article-3"),
        ("z.jsonl", 1, "article-5"),
    ]
    assert items(root) == found  # the same order on every run


def test_stdin_is_read_when_the_path_is_a_dash(monkeypatch: pytest.MonkeyPatch):
    data = b"\xef\xbb\xbf" + line(1) + b"\r\n\n" + line(3) + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    found = items("-")
    assert summary(found) == [(1, "article-1"), (2, "skipped"), (3, "article-3")]
    assert {item.source for item in found} == {"<stdin>"}


def test_files_and_stdin_are_read_in_the_order_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line(2) + b"\n"), encoding="utf-8"))
    first = write(tmp_path / "first.jsonl", line(1) + b"\n")
    found = items(first, "-")
    assert [(item.source, item.value["slug"]) for item in found] == [
        (str(first), "article-1"),
        ("<stdin>", "article-2"),
    ]


def test_missing_path_raises_input_error(tmp_path: Path):
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(InputError, match="no such file or directory") as caught:
        items(missing)
    assert str(missing) in caught.value.message


def test_missing_path_fails_before_any_record_is_read(tmp_path: Path):
    present = write(tmp_path / "present.jsonl", line(1) + b"\n")
    with pytest.raises(InputError):
        items(present, tmp_path / "absent.jsonl")
