"""The slugs one import run has seen, and where: duplicates in the input are rejected by it."""

from __future__ import annotations

from array import array
from collections.abc import Callable


class SlugLedger:
    """The slugs accepted in one run and where each was read: ~40 bytes a slug plus its UTF-8.

    A dict of str -> (source, line) takes ~230 bytes a slug (of ~57 characters): at 1M articles
    that was what pushed a rebuild past 2 GB. Here the slugs are packed as UTF-8 into one
    bytearray and found through an open-addressing table of their hashes; a hash match is
    confirmed against the packed bytes, so the answer is exact even for two slugs that share a
    hash. `hash_slug` must return a signed 64-bit int (the builtin hash does; tests pass a
    colliding one).
    """

    def __init__(self, hash_slug: Callable[[str], int] = hash) -> None:
        self._hash = hash_slug
        self.clear()

    def clear(self) -> None:
        """Forget every slug: the arrays go back to the system, before the final merge needs the memory."""
        self._sources: list[str] = []  # distinct source names; entries keep an index into it
        self._source_ids: dict[str, int] = {}
        self._text = bytearray()  # every slug's UTF-8, back to back
        self._ends = array("Q")  # entry i's slug ends at _ends[i], and starts where entry i - 1 ends
        self._hashes = array("q")
        self._source = array("I")
        self._line = array("Q")
        self._slots = array("i", [-1]) * 16  # entry numbers at their hash (linear probing); -1 is free
        self._room = 8  # entries left before the table is half full

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, slug: str) -> bool:
        return self._entry(slug, self._hash(slug))[1] >= 0

    def add(self, slug: str, source: str, line: int) -> tuple[str, int] | None:
        """Record where `slug` was read, or, if it was recorded before, keep that and return it."""
        hashed = self._hash(slug)
        slot, entry = self._entry(slug, hashed)
        if entry >= 0:
            return self._sources[self._source[entry]], self._line[entry]
        self._slots[slot] = len(self._hashes)
        self._hashes.append(hashed)
        self._text += slug.encode()
        self._ends.append(len(self._text))
        self._source.append(self._source_id(source))
        self._line.append(line)
        self._room -= 1
        if not self._room:
            self._grow()
        return None

    def _entry(self, slug: str, hashed: int) -> tuple[int, int]:
        """(slot, entry number) of `slug`, or (the free slot it would take, -1)."""
        slots, hashes, mask = self._slots, self._hashes, len(self._slots) - 1
        slot = hashed & mask
        while (entry := slots[slot]) >= 0:
            if hashes[entry] == hashed and self._slug_bytes(entry) == slug.encode():
                return slot, entry
            slot = (slot + 1) & mask
        return slot, -1

    def _slug_bytes(self, entry: int) -> bytearray:
        start = self._ends[entry - 1] if entry else 0
        return self._text[start : self._ends[entry]]

    def _source_id(self, source: str) -> int:
        source_id = self._source_ids.get(source)
        if source_id is None:
            source_id = self._source_ids[source] = len(self._sources)
            self._sources.append(source)
        return source_id

    def _grow(self) -> None:
        size = 2 * len(self._slots)
        slots, mask = array("i", [-1]) * size, size - 1
        for entry, hashed in enumerate(self._hashes):
            slot = hashed & mask
            while slots[slot] >= 0:
                slot = (slot + 1) & mask
            slots[slot] = entry
        self._slots = slots
        self._room = size // 2 - len(self._hashes)
