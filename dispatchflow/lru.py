"""A bounded, thread-safe least-recently-used cache of things built from an app version.

An app version never changes, so what is derived from it (form schemas and
validators, notification specs and templates, authorizers) is built once per
key and kept for the next request or job; past ``size`` entries the least
recently used one is dropped. Building happens outside the lock, since it may be
slow or raise (then nothing is kept); two threads that miss at once may both
build, and the last one's result is kept. Used by every layer, so it imports
nothing of dispatchflow.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_MISSING = object()


class LruCache(Generic[_K, _V]):
    """At most ``size`` values by key, the least recently used dropped first."""

    __slots__ = ("size", "_items", "_lock")

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        """The value kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: _K, value: _V) -> _V:
        """Keep ``value`` for ``key``, dropping the least recently used past ``size``."""
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def get_or_build(self, key: _K, build: Callable[[], _V]) -> _V:
        """The value kept for ``key`` (None included), else ``build()``, kept."""
        with self._lock:
            found = self._items.get(key, _MISSING)
            if found is not _MISSING:
                self._items.move_to_end(key)
                return cast(_V, found)
        return self.put(key, build())

    def clear(self) -> None:
        """Drop every value."""
        with self._lock:
            self._items.clear()
