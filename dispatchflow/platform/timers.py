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

from . import defaults
from .db import outbox, timers
from .storage import as_utc

#: Outbox event name of a fired timer (never a bundle event: names there have no underscore
#: prefix).
TIMER_EVENT = "__timer__"


def set_timer(conn: Connection, entity: str, record_id: int, kind: str, key: str,
              fire_at: datetime, now: datetime, payload: dict[str, Any] | None = None,
              version_number: int | None = None) -> int:
    """Arm a timer (replacing a pending one with the same kind and key); returns its id.

    An identical pending timer (same fire time and payload) is kept as it is.
    """
    fire_at, now = fire_at.astimezone(UTC), now.astimezone(UTC)
    payload = {**(payload or {}), "version": version_number}
    existing = conn.execute(select(timers.c.id, timers.c.fire_at, timers.c.payload).where(
        timers.c.entity == entity).where(timers.c.record_id == record_id).where(
        timers.c.kind == kind).where(timers.c.key == key).where(
        timers.c.status == "pending")).all()
    if len(existing) == 1 and as_utc(existing[0][1]) == fire_at and existing[0][2] == payload:
        return int(existing[0][0])
    cancel_timers(conn, entity, record_id, kind, [key])
    result = conn.execute(timers.insert().values(
        entity=entity, record_id=record_id, kind=kind, key=key, payload=payload,
        fire_at=fire_at, status="pending", created_at=now))
    inserted = result.inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def insert_timers(conn: Connection, entity: str, record_id: int, kind: str,
                  items: list[tuple[str, datetime, dict[str, Any]]], now: datetime,
                  version_number: int | None = None) -> None:
    """Arm new timers ``(key, fire_at, payload)`` in one statement (no replacement check)."""
    conn.execute(timers.insert(), [
        {"entity": entity, "record_id": record_id, "kind": kind, "key": key,
         "payload": {**payload, "version": version_number}, "fire_at": at.astimezone(UTC),
         "status": "pending", "created_at": now.astimezone(UTC)} for key, at, payload in items])


def arm_timers(conn: Connection, entity: str, record_id: int, kind: str,
               wanted: dict[str, tuple[datetime, dict[str, Any]]], now: datetime,
               version_number: int | None = None, prefix: str = "") -> None:
    """Make the record's pending ``kind`` timers whose key starts with ``prefix`` exactly
    ``wanted`` (key -> (fire_at, payload)): unchanged ones stay, others are cancelled or
    inserted. One query when nothing changes.
    """
    query = select(timers.c.id, timers.c.key, timers.c.fire_at, timers.c.payload).where(
        timers.c.entity == entity).where(timers.c.record_id == record_id).where(
        timers.c.kind == kind).where(timers.c.status == "pending")
    if prefix:
        query = query.where(timers.c.key.startswith(prefix, autoescape=True))
    current = {row.key: row for row in conn.execute(query)}
    want = {key: (at.astimezone(UTC), {**payload, "version": version_number})
            for key, (at, payload) in wanted.items()}
    stale = [row.id for key, row in current.items()
             if want.get(key) != (as_utc(row.fire_at), row.payload)]
    if stale:
        conn.execute(update(timers).where(timers.c.id.in_(stale)).values(status="cancelled"))
    fresh = [{"entity": entity, "record_id": record_id, "kind": kind, "key": key,
              "payload": payload, "fire_at": at, "status": "pending",
              "created_at": now.astimezone(UTC)}
             for key, (at, payload) in want.items()
             if key not in current or current[key].id in stale]
    if fresh:
        conn.execute(timers.insert(), fresh)


def cancel_timers(conn: Connection, entity: str, record_id: int, kind: str,
                  keys: Iterable[str] | None = None) -> int:
    """Cancel pending timers of a record (of ``kind``, with one of ``keys`` if given)."""
    query = update(timers).where(timers.c.entity == entity) \
        .where(timers.c.record_id == record_id).where(timers.c.kind == kind) \
        .where(timers.c.status == "pending")
    if keys is not None:
        keys = list(keys)
        if not keys:
            return 0
        query = query.where(timers.c.key.in_(keys))
    return conn.execute(query.values(status="cancelled")).rowcount


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
    with engine.connect() as conn:
        value = conn.execute(select(timers.c.fire_at).where(timers.c.status == "pending")
                             .order_by(timers.c.fire_at).limit(1)).scalar()
    return None if value is None else as_utc(value)
