"""Reading the change feed: the audit and timeline rows after a cursor (see package docs).

A :class:`Cursor` is a pair of row ids, the last audit row and the last timeline
row seen; written as ``"<audit id>-<timeline id>"`` it is the SSE event id, and
it only grows. Ids are given out in commit order by SQLite; on PostgreSQL two
transactions may commit out of id order, so a change can in rare races be
seen only at the next re-sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ..store.db import audit_log, timeline

#: The audit action of a read (of a sensitive record): not a change.
READ = "read"


@dataclass(frozen=True, order=True)
class Cursor:
    """The last audit row id and the last timeline row id a reader has seen."""

    audit: int
    timeline: int

    def __str__(self) -> str:
        return f"{self.audit}-{self.timeline}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor written as ``text`` (an SSE event id), or None if it is not one."""
        if not text:
            return None
        first, sep, second = text.strip().partition("-")
        if not sep or not first.isdigit() or not second.isdigit():
            return None
        return cls(int(first), int(second))


@dataclass(frozen=True)
class Change:
    """One change: its record, what happened (``kind``: the audit action such as
    ``create``, or the timeline entry kind such as ``dispatch``), when (UTC), and
    the cursor just after it (``event_id``)."""

    event_id: Cursor
    entity: str
    record_id: int
    kind: str
    at: datetime


def head(conn: Connection) -> Cursor:
    """The cursor after the newest change."""
    last_audit = conn.execute(select(func.max(audit_log.c.id))).scalar()
    last_entry = conn.execute(select(func.max(timeline.c.id))).scalar()
    return Cursor(int(last_audit or 0), int(last_entry or 0))


def changes_after(conn: Connection, cursor: Cursor, limit: int) -> tuple[list[Change], bool]:
    """At most ``limit`` changes after ``cursor``, oldest first, and whether more follow.

    The two tables are merged by time (then audit before timeline, then id); when
    one of them has more rows than ``limit``, the merge stops before its first
    row not read, so that resuming from the last change's cursor misses nothing.
    """
    sources = (_rows(conn, audit_log, audit_log.c.action, cursor.audit, limit),
               _rows(conn, timeline, timeline.c.kind, cursor.timeline, limit))
    # Rows past a truncated source's last one read may sort before what is left.
    bound = min((rows[limit - 1][0] for rows in sources if len(rows) > limit), default=None)
    heads, last = [0, 0], [cursor.audit, cursor.timeline]
    out: list[Change] = []
    while len(out) < limit:
        # Each table in id order (its cursor never goes back), the older head first.
        ready = [s for s in (0, 1) if heads[s] < min(len(sources[s]), limit)]
        if not ready:
            break
        source = min(ready, key=lambda s: (sources[s][heads[s]][0], s))
        at, row_id, entity, record_id, kind = sources[source][heads[source]]
        if bound is not None and at > bound and out:
            break
        heads[source] += 1
        last[source] = row_id
        out.append(Change(Cursor(last[0], last[1]), entity, record_id, kind, at))
    more = any(len(rows) > heads[s] for s, rows in enumerate(sources))
    return out, more


def _rows(conn: Connection, table: Any, kind: Any, after: int,
          limit: int) -> list[tuple[datetime, int, str, int, str]]:
    query = (select(table.c.at, table.c.id, table.c.entity, table.c.record_id, kind)
             .where(table.c.id > after).order_by(table.c.id).limit(limit + 1))
    if table is audit_log:  # an audited read of a sensitive record changes nothing
        query = query.where(kind != READ)
    return [(_utc(at), int(i), e, int(r), k) for at, i, e, r, k in conn.execute(query)]


def _utc(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
