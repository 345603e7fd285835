"""dispatchflow.platform.store.statement_time: read queries stopped at their time limit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dispatchflow.errors import QueryTimeout
from dispatchflow.platform.store.statement_time import time_limited

SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT count(*) FROM (SELECT x FROM c LIMIT 1000000000) AS t",
    "postgresql": "SELECT pg_sleep(5)",
}


def test_a_slow_query_is_stopped_and_the_connection_stays_usable(engine: Any) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        with time_limited(engine, 0.3) as conn:
            conn.execute(text(SLOW[engine.dialect.name])).scalar()
    assert time.monotonic() - started < 2.0
    assert info.value.message == "the query ran longer than 0.3 s and was stopped"
    assert "narrow the filter" in (info.value.hint or "")
    with time_limited(engine, 0.3) as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    with engine.connect() as conn:  # the limit does not outlive the block
        assert conn.execute(text("SELECT 1")).scalar() == 1
        if engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"


def test_quick_queries_and_other_errors_pass_through(engine: Any) -> None:
    with time_limited(engine, 5.0) as conn:
        assert conn.execute(text("SELECT 2")).scalar() == 2
    with pytest.raises(DBAPIError, match="no_such_table"):
        with time_limited(engine, 5.0) as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
