"""Prebuilt statements for the event-processing hot path.

Building a SQLAlchemy statement and computing its cache key costs more than
running a simple one against a local database; the statements run for every
event (read a record by id, its pending events and timers, mark events
processed, update a row by id) are built once here, with bound parameters, and
reused. Statements per entity table are cached per table object (one per app
version).
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Select, Table, Update, bindparam, func, select, update

from .db import flow_instances, outbox, timers

#: Unprocessed, unparked outbox events of several records of one entity after id
#: ``after``, oldest first, at most ``limit``. Parameters: entity, ids, after, limit.
PENDING_EVENTS_OF = (
    select(outbox).where(outbox.c.entity == bindparam("entity"))
    .where(outbox.c.record_id.in_(bindparam("ids", expanding=True)))
    .where(outbox.c.processed_at.is_(None)).where(outbox.c.failed_at.is_(None))
    .where(outbox.c.id > bindparam("after"))
    .order_by(outbox.c.id).limit(bindparam("limit")))

#: Flow instances of several records of one entity, oldest first. Parameters: entity, ids.
INSTANCES_OF_MANY = (
    select(flow_instances).where(flow_instances.c.entity == bindparam("entity"))
    .where(flow_instances.c.record_id.in_(bindparam("ids", expanding=True)))
    .order_by(flow_instances.c.id))

#: Pending timers of several records of one entity. Parameters: entity, ids.
PENDING_TIMERS_OF_MANY = (
    select(timers.c.record_id, timers.c.kind, timers.c.key, timers.c.fire_at,
           timers.c.payload)
    .where(timers.c.entity == bindparam("entity"))
    .where(timers.c.record_id.in_(bindparam("ids", expanding=True)))
    .where(timers.c.status == "pending"))

#: Records with unprocessed, unparked events, oldest event first. Parameter: limit.
PENDING_RECORDS = (
    select(outbox.c.entity, outbox.c.record_id)
    .where(outbox.c.processed_at.is_(None)).where(outbox.c.failed_at.is_(None))
    .group_by(outbox.c.entity, outbox.c.record_id)
    .order_by(func.min(outbox.c.id)).limit(bindparam("limit")))

#: Mark outbox events processed. Parameters: ids (a list), at.
MARK_PROCESSED = (
    update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(processed_at=bindparam("at"), attempts=outbox.c.attempts + 1))

#: Update a flow instance: parameters ``where_id`` plus the columns to set.
UPDATE_INSTANCE = update(flow_instances).where(flow_instances.c.id == bindparam("where_id"))

#: Cancel some pending timers of a record. Parameters: of_entity, of_record, of_kind,
#: keys (names differ from the columns: an UPDATE reserves those for its SET clause).
CANCEL_TIMERS = (
    update(timers).where(timers.c.entity == bindparam("of_entity"))
    .where(timers.c.record_id == bindparam("of_record"))
    .where(timers.c.kind == bindparam("of_kind"))
    .where(timers.c.key.in_(bindparam("keys", expanding=True)))
    .where(timers.c.status == "pending").values(status="cancelled"))


@lru_cache(maxsize=512)
def row_by_id(table: Table, lock: str | None = None) -> Select:
    """Select a row of ``table`` by id (parameter ``record_id``); ``lock`` "wait" locks
    it, "skip" locks it unless another transaction holds it (then no row)."""
    query = select(table).where(table.c.id == bindparam("record_id"))
    if lock is None:
        return query
    return query.with_for_update(skip_locked=lock == "skip")


@lru_cache(maxsize=512)
def rows_by_ids(table: Table) -> Select:
    """Lock the rows of ``table`` with the given ids (parameter ``ids``) that no other
    transaction holds; those it holds are left out."""
    return select(table).where(table.c.id.in_(bindparam("ids", expanding=True))) \
        .with_for_update(skip_locked=True)


@lru_cache(maxsize=512)
def update_by_id(table: Table) -> Update:
    """Update a row of ``table``: parameters ``where_id`` plus the columns to set."""
    return update(table).where(table.c.id == bindparam("where_id"))
