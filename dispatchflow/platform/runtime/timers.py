"""Durable timers: rows in ``df_timers`` that the scheduler turns into events exactly once.

A timer belongs to a record. Setting, cancelling and firing happen inside
transactions: the runner sets and cancels timers in the same transaction as
the event that caused them, and :func:`fire_due` marks a due timer fired and
writes its ``timer`` outbox event in one transaction, claiming rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two schedulers never fire one
timer and a scheduler killed mid-way fires nothing twice. The event's time is
the timer's ``fire_at``, not the moment the scheduler noticed it, so what the
timer causes does not depend on how late the scheduler was.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection, Engine

from .. import defaults
from ..store.db import outbox, reading, timers
from ..store.statements import CANCEL_TIMERS, PENDING_TIMERS_OF_MANY
from ..store.storage import as_utc

#: Outbox event name of a fired timer (never a bundle event: names there have no underscore
#: prefix).
TIMER_EVENT = "__timer__"


class RecordTimers:
    """One record's pending timers within one transaction that holds the record's lock.

    They are read once, on first use, and then kept equal to what this
    transaction writes, so re-arming timers that did not change, or cancelling
    ones that are not there, costs no query. Nothing else adds or cancels a
    record's timers without its lock; the scheduler may fire one meanwhile, which
    its handler treats as stale if this transaction replaced it.

    With :attr:`unwritten` set (a dict the transaction's owner inserts at its end,
    ``step.DeferredWrites.timers``), new timers wait there; cancelling one of
    them just drops it.
    """

    def __init__(self, conn: Connection, entity: str, record_id: int) -> None:
        self.conn, self.entity, self.record_id = conn, entity, int(record_id)
        self._pending: dict[tuple[str, str], tuple[datetime, Any]] | None = None
        self.unwritten: dict[tuple[str, int, str, str], dict[str, Any]] | None = None

    @classmethod
    def load_many(cls, conn: Connection, entity: str, record_ids: list[int]
                  ) -> dict[int, RecordTimers]:
        """The pending timers of several locked records, read in one query."""
        out = {int(i): cls(conn, entity, i) for i in record_ids}
        for record_id, pending in _read_pending(conn, entity, list(out)).items():
            out[record_id]._pending = pending
        return out

    def _rows(self) -> dict[tuple[str, str], tuple[datetime, Any]]:
        if self._pending is None:
            self._pending = _read_pending(self.conn, self.entity, [self.record_id])[
                self.record_id]
        return self._pending

    def set(self, kind: str, key: str, fire_at: datetime, now: datetime,
            payload: dict[str, Any] | None = None, version_number: int | None = None) -> None:
        """Arm a timer, replacing a pending one with the same kind and key (an identical
        one, same time and payload, is kept as it is)."""
        self.set_many(kind, {key: (fire_at, payload or {})}, now, version_number)

    def set_many(self, kind: str, wanted: dict[str, tuple[datetime, dict[str, Any]]],
                 now: datetime, version_number: int | None = None) -> None:
        """:meth:`set` for several timers (key -> (fire_at, payload)), in two statements
        at most; pending ones with other keys stay."""
        rows = self._rows()
        want = {key: (at.astimezone(UTC), {**payload, "version": version_number})
                for key, (at, payload) in wanted.items()}
        changed = {key: value for key, value in want.items() if rows.get((kind, key)) != value}
        self.cancel(kind, list(changed))
        self._insert(kind, changed, now)

    def insert(self, kind: str, items: list[tuple[str, datetime, dict[str, Any]]],
               now: datetime, version_number: int | None = None) -> None:
        """Arm new timers ``(key, fire_at, payload)`` in one statement (no replacement)."""
        self._insert(kind, {key: (at.astimezone(UTC), {**payload, "version": version_number})
                            for key, at, payload in items}, now)

    def arm(self, kind: str, wanted: dict[str, tuple[datetime, dict[str, Any]]],
            now: datetime, version_number: int | None = None, prefix: str = "") -> None:
        """Make the pending ``kind`` timers whose key starts with ``prefix`` exactly
        ``wanted`` (key -> (fire_at, payload)): unchanged ones stay, others are
        cancelled or inserted."""
        current = {key: value for (k, key), value in self._rows().items()
                   if k == kind and key.startswith(prefix)}
        want = {key: (at.astimezone(UTC), {**payload, "version": version_number})
                for key, (at, payload) in wanted.items()}
        self.cancel(kind, [key for key, value in current.items() if want.get(key) != value])
        self._insert(kind, {key: value for key, value in want.items()
                            if current.get(key) != value}, now)

    def cancel(self, kind: str, keys: Iterable[str] | None = None) -> int:
        """Cancel pending ``kind`` timers (those with one of ``keys`` if given)."""
        rows = self._rows()
        found = [key for k, key in rows if k == kind] if keys is None else \
            [key for key in dict.fromkeys(keys) if (kind, key) in rows]
        if not found:
            return 0
        unwritten = self.unwritten if self.unwritten is not None else {}
        stored = [key for key in found
                  if unwritten.pop((self.entity, self.record_id, kind, key), None) is None]
        if stored:
            self.conn.execute(CANCEL_TIMERS, {"of_entity": self.entity,
                                              "of_record": self.record_id, "of_kind": kind,
                                              "keys": stored})
        for key in found:
            del rows[(kind, key)]
        return len(found)

    def _insert(self, kind: str, items: dict[str, tuple[datetime, Any]], now: datetime) -> None:
        if not items:
            return
        rows = {(self.entity, self.record_id, kind, key): {
            "entity": self.entity, "record_id": self.record_id, "kind": kind, "key": key,
            "payload": payload, "fire_at": at, "status": "pending",
            "created_at": now.astimezone(UTC)} for key, (at, payload) in items.items()}
        if self.unwritten is not None:
            self.unwritten.update(rows)
        else:
            self.conn.execute(timers.insert(), list(rows.values()))
        self._rows().update({(kind, key): value for key, value in items.items()})


def _read_pending(conn: Connection, entity: str, record_ids: list[int]
                  ) -> dict[int, dict[tuple[str, str], tuple[datetime, Any]]]:
    """Pending timers of records, (kind, key) -> (fire_at, payload) per record id."""
    out: dict[int, dict[tuple[str, str], tuple[datetime, Any]]] = {i: {} for i in record_ids}
    for r in conn.execute(PENDING_TIMERS_OF_MANY, {"entity": entity, "ids": record_ids}):
        out[int(r.record_id)][(r.kind, r.key)] = (as_utc(r.fire_at), r.payload)
    return out


def pending_timers(conn: Connection, entity: str, record_id: int,
                   kind: str | None = None) -> list[dict[str, Any]]:
    """The pending timers of a record, soonest first."""
    query = select(timers).where(timers.c.entity == entity) \
        .where(timers.c.record_id == record_id).where(timers.c.status == "pending")
    if kind is not None:
        query = query.where(timers.c.kind == kind)
    return [dict(r) for r in conn.execute(query.order_by(timers.c.fire_at, timers.c.id))
            .mappings()]


def fire_due(engine: Engine, now: datetime,
             limit: int = defaults.SCHEDULER_BATCH) -> tuple[list[tuple[str, int]], int]:
    """Fire the timers due at ``now``: each becomes one outbox event, exactly once.

    Returns the records that got events (for the caller to enqueue after commit)
    and how many timers fired.
    """
    skip_locked = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        query = select(timers).where(and_(timers.c.status == "pending",
                                          timers.c.fire_at <= now)) \
            .order_by(timers.c.fire_at, timers.c.id).limit(limit)
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).mappings().all()
        now = now.astimezone(UTC)
        touched: dict[tuple[str, int], None] = {}
        count = 0
        for row in rows:
            done = conn.execute(update(timers).where(timers.c.id == row["id"])
                                .where(timers.c.status == "pending")
                                .values(status="fired", fired_at=now))
            if done.rowcount != 1:
                continue
            payload = dict(row["payload"] or {})
            conn.execute(outbox.insert().values(
                entity=row["entity"], record_id=row["record_id"], event=TIMER_EVENT,
                created_at=as_utc(row["fire_at"]), attempts=0,
                version_number=payload.get("version"),
                payload={"timer": row["id"], "kind": row["kind"], "key": row["key"],
                         **payload}))
            touched[(row["entity"], int(row["record_id"]))] = None
            count += 1
    return list(touched), count


def next_due(engine: Engine) -> datetime | None:
    """When the soonest pending timer is due (None when there is none)."""
    with reading(engine) as conn:
        value = conn.execute(select(timers.c.fire_at).where(timers.c.status == "pending")
                             .order_by(timers.c.fire_at).limit(1)).scalar()
    return None if value is None else as_utc(value)
