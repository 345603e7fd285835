"""Users' inboxes: what the ``inbox`` channel delivered, read and acknowledged.

Each function works in the caller's connection and only on the given user's
own messages: a message id of another user reads as absent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from ..store.db import inbox as inbox_table

_T = inbox_table


def inbox(conn: Connection, user_id: str, unread_only: bool = False,
          limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    """The user's messages, newest first: ``limit`` of them, older than ``before_id``."""
    query = select(_T).where(_T.c.user_id == user_id)
    if unread_only:
        query = query.where(_T.c.read_at.is_(None))
    if before_id is not None:
        query = query.where(_T.c.id < before_id)
    rows = conn.execute(query.order_by(_T.c.id.desc()).limit(max(1, limit))).mappings()
    return [{k: _aware(v) for k, v in row.items()} for row in rows]


def unread_count(conn: Connection, user_id: str) -> int:
    """How many of the user's messages are unread."""
    return int(conn.execute(select(func.count()).select_from(_T).where(
        _T.c.user_id == user_id, _T.c.read_at.is_(None))).scalar_one())


def mark_read(conn: Connection, user_id: str, inbox_id: int, now: datetime) -> bool:
    """Mark one of the user's messages read (first time only); False if it is not theirs."""
    return _stamp(conn, user_id, inbox_id, {"read_at": now}, _T.c.read_at)


def acknowledge(conn: Connection, user_id: str, inbox_id: int, now: datetime) -> bool:
    """Acknowledge one of the user's messages (also marks it read).

    Returns False when the message is not the user's; acknowledging twice keeps
    the first time and returns True.
    """
    found = conn.execute(select(_T.c.id, _T.c.read_at).where(
        _T.c.id == inbox_id, _T.c.user_id == user_id)).first()
    if found is None:
        return False
    at = now.astimezone(UTC)
    values: dict[str, Any] = {"acknowledged_at": at}
    if found.read_at is None:
        values["read_at"] = at
    conn.execute(update(_T).where(_T.c.id == inbox_id, _T.c.acknowledged_at.is_(None))
                 .values(**values))
    return True


def _stamp(conn: Connection, user_id: str, inbox_id: int, values: dict[str, Any],
           column: Any) -> bool:
    found = conn.execute(select(_T.c.id).where(_T.c.id == inbox_id,
                                              _T.c.user_id == user_id)).first()
    if found is None:
        return False
    conn.execute(update(_T).where(_T.c.id == inbox_id, column.is_(None))
                 .values(**{k: v.astimezone(UTC) for k, v in values.items()}))
    return True


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
