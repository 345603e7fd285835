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
from typing import Any

from sqlalchemy import Insert, Select, Table, Update, bindparam, func, select, update

from .db import audit_log, flow_instances, outbox, timers

#: Store an outbox event / an audit row (parameters: the columns).
INSERT_EVENT = outbox.insert()
INSERT_AUDIT = audit_log.insert()

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


#: Reference columns of a table joined by :func:`row_by_id` and :func:`rows_by_ids`,
#: with the entities and tables they point to: ``((column, entity, table), ...)``.
References = tuple[tuple[str, str, Table], ...]


def reference_label(position: int, column: str) -> str:
    """The label of ``column`` of the ``position``-th joined reference in a row read by
    :func:`row_by_id` or :func:`rows_by_ids`."""
    return f"ref{position}__{column}"


def _with_references(table: Table, references: References) -> Select:
    """``table``'s rows with the rows its reference columns point to (left-joined, their
    columns labelled by :func:`reference_label`): one query instead of one per reference."""
    columns: list[Any] = list(table.c)
    joined: Any = table
    for position, (column, _, target) in enumerate(references):
        alias = target.alias(f"ref{position}")
        columns.extend(c.label(reference_label(position, c.name)) for c in alias.c)
        joined = joined.outerjoin(alias, alias.c.id == table.c[column])
    return select(*columns).select_from(joined)


@lru_cache(maxsize=512)
def row_by_id(table: Table, lock: str | None = None, references: References = ()) -> Select:
    """Select a row of ``table`` by id (parameter ``record_id``), with the rows of
    ``references`` joined; ``lock`` "wait" locks it, "skip" locks it unless another
    transaction holds it (then no row). Only ``table``'s row is locked."""
    query = _with_references(table, references).where(table.c.id == bindparam("record_id"))
    if lock is None:
        return query
    return query.with_for_update(skip_locked=lock == "skip", of=table)


@lru_cache(maxsize=512)
def rows_by_ids(table: Table, references: References = ()) -> Select:
    """Lock the rows of ``table`` with the given ids (parameter ``ids``) that no other
    transaction holds, with the rows of ``references`` joined; those it holds are left
    out."""
    return _with_references(table, references) \
        .where(table.c.id.in_(bindparam("ids", expanding=True))) \
        .with_for_update(skip_locked=True, of=table)


@lru_cache(maxsize=512)
def insert_returning(table: Table) -> Insert:
    """Insert a row into ``table`` (parameters: the columns) and return it as stored."""
    return table.insert().returning(*table.c)


@lru_cache(maxsize=512)
def update_by_id(table: Table) -> Update:
    """Update a row of ``table``: parameters ``where_id`` plus the columns to set."""
    return update(table).where(table.c.id == bindparam("where_id"))
