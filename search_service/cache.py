"""A small least-recently-used cache for values derived from one index version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUCache:
    """At most `size` entries (0 disables it); the least recently used one goes first.

    Keys carry the index version they were computed for, so a commit never serves stale values:
    entries of older versions simply stop being asked for and age out. A server's threads share
    one (a search's counting runs beside its ranking): a lock keeps a lookup and an eviction apart.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value of `key`, else `compute()`, kept for next time."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value
