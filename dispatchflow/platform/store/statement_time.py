"""Time limits on read queries, so one request cannot hold a database worker for long.

A filter can make a list query slow (a pattern, many conditions, a large table);
without a limit it holds a pooled connection, and on SQLite the GIL in every call
of a Python ``REGEXP`` function, while other requests wait. :func:`time_limited`
gives a connection whose statements stop after ``seconds``:

* PostgreSQL: ``SET statement_timeout`` on the (autocommit) read connection and
  ``RESET`` after; the server cancels a statement past it (SQLSTATE 57014).
* SQLite: a progress handler checks a deadline every
  ``defaults.SQLITE_DEADLINE_CHECK_STEPS`` virtual-machine steps and interrupts
  the statement; it is removed when the block ends.

Either way the block raises :class:`~dispatchflow.errors.QueryTimeout` (the API
answers 503) and nothing is left running.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from ...errors import QueryTimeout
from .. import defaults
from .db import reading

_PG_QUERY_CANCELED = "57014"


@contextmanager
def time_limited(engine: Engine, seconds: float) -> Iterator[Connection]:
    """A connection for reads whose statements are stopped after ``seconds`` each.

    Raises QueryTimeout (from the database's own error) when one is stopped.
    """
    with reading(engine) as conn:
        if engine.dialect.name == "postgresql":
            # Session-wide and reset after: SET LOCAL would need a transaction, whose
            # BEGIN and COMMIT cost more round trips than the RESET (measured).
            conn.exec_driver_sql(f"SET statement_timeout = {max(1, round(seconds * 1000))}")
            try:
                with _translated(seconds):
                    yield conn
            finally:
                conn.exec_driver_sql("RESET statement_timeout")
            return
        raw = conn.connection.dbapi_connection
        if not isinstance(raw, sqlite3.Connection):
            yield conn
            return
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: time.monotonic() > deadline,
                                 defaults.SQLITE_DEADLINE_CHECK_STEPS)
        try:
            with _translated(seconds):
                yield conn
        finally:
            raw.set_progress_handler(None, 0)


@contextmanager
def _translated(seconds: float) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if not _is_timeout(exc.orig):
            raise
        raise QueryTimeout(f"the query ran longer than {seconds:g} s and was stopped",
                           hint="narrow the filter (fewer or simpler conditions, a "
                           "plainer pattern) or try again later") from exc


def _is_timeout(orig: Any) -> bool:
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig) == "interrupted"
    return getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED
