"""dispatchflow.platform.store.sql_regex: RE2 as SQLite's REGEXP, and checked filter patterns."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

from dispatchflow.dsl.compiler import App
from dispatchflow.errors import DslError
from dispatchflow.platform.records.sql_filter import parse_filter
from dispatchflow.platform.store.db import make_engine
from dispatchflow.platform.store.sql_regex import pattern_problem


def test_sqlite_regexp_is_re2() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as conn:
            started = time.monotonic()
            evil = conn.execute(text("SELECT :s REGEXP '^(a+)+$'"),
                                {"s": "a" * 40 + "!"}).scalar()
            assert time.monotonic() - started < 0.5
            assert evil == 0
            assert conn.execute(text("SELECT '漏水 leak' REGEXP '水'")).scalar() == 1
            assert conn.execute(text("SELECT NULL REGEXP 'a'")).scalar() is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("pattern, message", [
    ("^a", None),
    ("[0-9]+$", None),
    ("\\bab", "PostgreSQL reads differently from RE2 or not at all"),
    ("(?P<x>a)", "PostgreSQL reads differently from RE2 or not at all"),
    ("\\p{Han}", "PostgreSQL reads differently from RE2 or not at all"),
    ("(a)\\1", "'matches' cannot run this pattern: invalid escape sequence: \\1"),
    ("x" * 1001, "'matches' cannot run this pattern: the pattern has 1001 characters"),
])
def test_pattern_problem(pattern: str, message: str | None) -> None:
    found = pattern_problem(pattern)
    if message is None:
        assert found is None
    else:
        assert found is not None and message in found[0] and found[1]


def test_a_filter_with_a_backtracking_pattern_is_refused_with_its_position(
        sqlf_app: App) -> None:
    with pytest.raises(DslError) as info:
        parse_filter(sqlf_app, "ticket", 'ticket.s matches "^(?!x)"')
    err: Any = info.value
    assert err.message == ("'matches' cannot run this pattern: invalid perl operator: (?! "
                           "(character 2 of the pattern)")
    assert (err.line, err.column) == (1, 18)
    assert "linear time" in err.hint
