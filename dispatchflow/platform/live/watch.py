"""The one hook that nudges: an engine listener that notices feed rows and commits.

:func:`watch` hooks an engine so that a transaction which inserted audit or
timeline rows nudges the broker once it has committed, whichever service wrote
them. The statement is recognised from its compiled form (no SQL text parsing);
the nudge is sent when the connection goes back to the pool, which is after the
commit (SQLAlchemy's ``commit`` event fires before it).
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert

from ..store.db import audit_log, timeline
from .broker import Broker

_FEED_TABLES = frozenset({audit_log.name, timeline.name})
_WROTE, _COMMITTED = "df_live_wrote", "df_live_committed"

#: The broker each watched engine nudges (an engine is hooked once; a new runtime on
#: the same engine takes the hook over).
_BROKERS: weakref.WeakKeyDictionary[Engine, Broker] = weakref.WeakKeyDictionary()


def watch(engine: Engine, broker: Broker) -> None:
    """Nudge ``broker`` after every commit on ``engine`` that wrote to the change feed."""
    hooked = engine in _BROKERS
    _BROKERS[engine] = broker
    if not hooked:
        event.listen(engine, "after_cursor_execute", _noticed)
        event.listen(engine, "commit", _committing)
        event.listen(engine, "rollback", _rolled_back)
        event.listen(engine, "checkin", _checked_in)


def _noticed(conn: Connection, _cursor: Any, _statement: str, _parameters: Any,
             context: Any, _executemany: bool) -> None:
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    if isinstance(statement, Insert) and getattr(statement.table, "name", None) in _FEED_TABLES:
        conn.info[_WROTE] = True


def _committing(conn: Connection) -> None:
    # Connection.info is the pooled connection's: the check-in below sees it.
    if conn.info.pop(_WROTE, False):
        conn.info[_COMMITTED] = _BROKERS.get(conn.engine)


def _rolled_back(conn: Connection) -> None:
    conn.info.pop(_WROTE, None)


def _checked_in(_dbapi_conn: Any, record: Any) -> None:
    broker = record.info.pop(_COMMITTED, None) if record is not None else None
    if broker is not None:
        broker.publish()
