"""The bounded LRU cache shared by the per-version caches (dispatchflow/lru.py)."""

from __future__ import annotations

import pytest

from dispatchflow.lru import LruCache


def test_the_least_recently_used_value_goes_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_get_or_build_builds_once_and_keeps_none_too() -> None:
    cache: LruCache[str, int | None] = LruCache(4)
    calls: list[str] = []

    def build() -> None:
        calls.append("built")

    assert cache.get_or_build("k", build) is None
    assert cache.get_or_build("k", build) is None
    assert calls == ["built"]


def test_a_build_that_raises_keeps_nothing() -> None:
    cache: LruCache[str, int] = LruCache(4)

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get_or_build("k", fail)
    assert cache.get_or_build("k", lambda: 7) == 7


def test_clear_drops_everything() -> None:
    cache: LruCache[str, int] = LruCache(4)
    cache.put("a", 1)
    cache.clear()
    assert cache.get("a") is None
