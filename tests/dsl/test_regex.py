"""dispatchflow.dsl.regex: the RE2 patterns of ``matches``, their caps and their cache."""

from __future__ import annotations

import re
import time

import pytest

from dispatchflow.dsl import regex as R


@pytest.mark.parametrize("pattern, text, found", [
    ("^WO-\\d{4}-\\d+$", "WO-2026-0001", True),
    ("^WO", "wo-1", False),
    ("水", "漏水 leak", True),
    ("^.$", "水", True),               # one character, not one byte
    ("^$", "", True),
    ("b$", "ab\n", False),              # $ is the end of the text, as on PostgreSQL
    ("(?i)LEAK", "burst leak", True),
    ("\\p{Han}+", "空调", True),
])
def test_search(pattern: str, text: str, found: bool) -> None:
    assert R.regex(pattern).search(text) is found


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    started = time.monotonic()
    assert R.regex("^(a+)+$").search("a" * 100_000 + "!") is False
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("pattern, message, pos", [
    ("(a)\\1", "invalid escape sequence: \\1", 3),
    ("^(?=VIP)", "invalid perl operator: (?=", 1),
    ("(?<!x)y", "invalid perl operator: (?<!", 0),
    ("a{1001}", "invalid repetition size: {1001}", 1),
    ("[0-9", "missing ]: [0-9", 0),
    ("x" * (R.MAX_PATTERN_CHARS + 1),
     f"the pattern has {R.MAX_PATTERN_CHARS + 1} characters; at most "
     f"{R.MAX_PATTERN_CHARS} are allowed", None),
])
def test_patterns_re2_cannot_run_are_re_errors_with_a_position(pattern: str, message: str,
                                                               pos: int | None) -> None:
    assert R.problem(pattern) == (message, pos)
    with pytest.raises(re.error) as info:
        R.regex(pattern)
    assert (info.value.msg, info.value.pos) == (message, pos)


def test_the_cache_is_bounded() -> None:
    for i in range(R.CACHE_SIZE + 50):
        R.regex(f"^x{i}$")
    info = R.regex.cache_info()
    assert info.currsize == R.CACHE_SIZE
    assert R.regex("^x7$") is not R.regex("^x8$")
    assert R.regex("^x7$") is R.regex("^x7$")
