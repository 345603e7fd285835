"""The records service: create, get, list, update, delete and timeline of records.

Every write stores the record, an audit row (actor, channel, before/after
changes) and an outbox event in ONE transaction, so nothing accepted is lost
and every change is explainable. Every call goes through the app's
:class:`~dispatchflow.platform.records.authz.Authorizer` (default deny): the action must
be allowed, rows are limited by the row filters (in SQL), reads are masked to
the readable fields and writes limited to the writable ones. A record the
actor may not see is reported exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, asc, desc, false, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ...dsl.model import EntityDef
from ...errors import ConflictError, NotFoundError, ValidationError
from ...forms.validation import FieldError, Validated, validate_payload
from .. import defaults
from ..store.db import audit_log, reading, timeline
from ..store.jsonvalues import changes, json_record, json_value
from ..store.statement_time import time_limited
from ..store.statements import INSERT_AUDIT, INSERT_EVENT, insert_returning
from ..store.storage import as_utc, from_row, to_row
from .actors import Actor
from .attachments import attachment_errors
from .candidate_masks import CandidateMask

if TYPE_CHECKING:
    from ..assembly import Runtime


MAX_ID = 2**63 - 1  # ids are BIGINT; larger numbers cannot name a record


@dataclass(frozen=True)
class Page:
    """One page of a list: JSON records and the cursor of the next page (or None)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class RecordService:
    """Records of the active app version; see module docs."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    # ------------------------------------------------------------------ helpers
    def _entity(self, name: str) -> EntityDef:
        entity = self.rt.app.entities.get(name)
        if entity is None:
            raise NotFoundError(f"no entity '{name}'")
        return entity

    def _visible(self, actor: Actor, entity: str, action: str) -> ColumnElement[bool]:
        table = self.rt.tables[entity]
        clause = self.rt.authz.row_clause(actor, entity, action, table, self.rt.tables,
                                          now=self.rt.clock())
        alive = table.c.deleted_at.is_(None)
        return alive if clause is None else and_(alive, clause)

    def _load(self, conn: Connection, actor: Actor, entity: str, record_id: int, action: str,
              lock: bool = False) -> Any:
        if not 0 < record_id <= MAX_ID:
            raise NotFoundError(f"no {entity} {record_id}")
        table = self.rt.tables[entity]
        query = select(table).where(table.c.id == record_id).where(
            self._visible(actor, entity, action))
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no {entity} {record_id}")
        return row

    def _record(self, entity: EntityDef, row: Any) -> dict[str, Any]:
        rec = from_row(entity, row, self.rt.tz)
        rec["row_version"] = row["row_version"]
        return rec

    def _present(self, actor: Actor, entity: EntityDef, rec: dict[str, Any]) -> dict[str, Any]:
        return json_record(entity, self.rt.authz.mask(actor, entity.name, rec, now=self.rt.clock()))

    def present(self, actor: Actor, entity_name: str, record: dict[str, Any]) -> dict[str, Any]:
        """A record as JSON through the one mask (:meth:`Authorizer.mask`), for records
        that embed linked records (an action's result).

        Each linked record is masked by its own entity's rules, or cut to its id
        when its row filter hides it from the actor; so is the record itself when
        the actor may not read it (a technician rejecting an offer of an order
        assigned to someone else gets its id and version only). References the
        row filters need are read from the database.
        """
        entity = self._entity(entity_name)
        now = self.rt.clock()
        with reading(self.rt.engine) as conn:
            resolve, referrers = self._resolver(conn), self._referrers(conn)
            if not self.rt.authz.row_allowed(actor, entity_name, "read", record, now=now,
                                             resolve=resolve, referrers=referrers):
                return {"id": record.get("id"), "row_version": record.get("row_version")}
            masked = self.rt.authz.mask(actor, entity_name, record, now=now, resolve=resolve,
                                        referrers=referrers)
        return json_record(entity, masked)

    def _check_references(self, conn: Connection, entity: EntityDef,
                          values: dict[str, Any]) -> list[FieldError]:
        errors = []
        for name, value in values.items():
            f = entity.fields.get(name)
            if f is None or f.kind != "reference" or value is None or not f.reference:
                continue
            target = self.rt.tables[f.reference]
            found = conn.execute(select(target.c.id).where(target.c.id == value)
                                 .where(target.c.deleted_at.is_(None))).first()
            if found is None:
                errors.append(FieldError(name, "reference", self.rt.message(
                    "reference_missing", entity=f.reference, id=value)))
        return errors

    def _check_unique(self, conn: Connection, entity: EntityDef, values: dict[str, Any],
                      locale: str, exclude_id: int | None = None) -> list[FieldError]:
        """Field errors for ``unique`` fields whose value another live record has."""
        table = self.rt.tables[entity.name]
        errors = []
        for name, value in values.items():
            f = entity.fields.get(name)
            if f is None or not f.unique or value is None or f.kind == "geo":
                continue
            query = select(table.c.id).where(table.c[name] == value)
            if exclude_id is not None:
                query = query.where(table.c.id != exclude_id)
            if conn.execute(query.limit(1)).first() is not None:
                errors.append(FieldError(name, "unique", self.rt.message(
                    "unique_taken", locale=locale, value=value)))
        return errors

    def _write_log(self, conn: Connection, actor: Actor, entity: str, record_id: int,
                   action: str, event: str, change: dict[str, Any], now: datetime) -> None:
        conn.execute(INSERT_AUDIT, {
            "entity": entity, "record_id": record_id, "action": action, "actor": actor.user_id,
            "channel": actor.channel, "at": now, "changes": change,
            "version_number": self.rt.version_number})
        conn.execute(INSERT_EVENT, {
            "entity": entity, "record_id": record_id, "event": event, "created_at": now,
            "attempts": 0, "payload": {"id": record_id, "changed": sorted(change),
                                       "actor": actor.user_id, "channel": actor.channel},
            "version_number": self.rt.version_number})

    def _process(self, entity: str, record_id: int) -> None:
        """After a commit: have the record's new event processed (inline or by a worker)."""
        self.rt.queue.enqueue("events", "process_record", entity, record_id)

    def _resolver(self, conn: Connection) -> Callable[[str, Any], dict[str, Any] | None]:
        def resolve(entity: str, record_id: Any) -> dict[str, Any] | None:
            table = self.rt.tables.get(entity)
            if table is None or record_id is None:
                return None
            row = conn.execute(select(table).where(table.c.id == record_id)
                               .where(table.c.deleted_at.is_(None))).mappings().first()
            return None if row is None else self._record(self.rt.app.entities[entity], row)
        return resolve

    def _referrers(self, conn: Connection) -> Callable[[str, str, Any], list[dict[str, Any]]]:
        """``rows_via`` lookups: the live ``entity`` records whose ``field`` holds an id."""
        def referrers(entity: str, field: str, record_id: Any) -> list[dict[str, Any]]:
            table = self.rt.tables[entity]
            rows = conn.execute(select(table).where(table.c[field] == record_id)
                                .where(table.c.deleted_at.is_(None))).mappings().all()
            return [self._record(self.rt.app.entities[entity], r) for r in rows]
        return referrers

    # ------------------------------------------------------------------ API
    def create(self, actor: Actor, entity_name: str, payload: Any, *, form: str | None = None,
               locale: str | None = None,
               preset: dict[str, Any] | None = None,
               also: Callable[[Connection, int], None] | None = None) -> dict[str, Any]:
        """Validate and store a new record; returns it as the actor may see it.

        ``preset`` holds values the platform sets, not the submitter (a form's
        hidden defaults, the signed-in customer): they override the payload and
        need no write permission, but are validated like everything else.
        ``also(conn, record_id)`` runs inside the same transaction after the insert
        (e.g. a channel recording its delivery key); if it raises, nothing is kept.
        Raises PermissionDenied, ValidationError (with field errors; nothing written).
        """
        entity = self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "create")
        locale = locale or self.rt.app.default_locale
        now = self.rt.clock()
        writable = self.rt.authz.writable_fields(actor, entity_name)
        if preset:
            payload = {**payload, **preset} if isinstance(payload, dict) else payload
            writable = writable | frozenset(preset)
        checked = self.validate_new(entity, payload, writable=writable, locale=locale, now=now,
                                    form=form)
        if checked.errors:
            raise ValidationError("the record is not valid", errors=checked.errors)
        values = checked.values
        with self.rt.engine.begin() as conn:
            ref_errors = self._check_references(conn, entity, values) + \
                self._check_unique(conn, entity, values, locale)
            ref_errors += attachment_errors(self.rt, conn, actor, entity, values, None, locale)
            if ref_errors:
                raise ValidationError("the record is not valid", errors=ref_errors)
            if not self.may_create(conn, actor, entity, values, now):
                raise ValidationError("you may not create this record", errors=[FieldError(
                    "", "row_filter", self.rt.message("row_filter", locale=locale))])
            try:
                rec = self.insert_new(conn, actor, entity, values, now)
            except IntegrityError as exc:  # a concurrent writer took a unique value first
                raise ConflictError(f"{entity_name} conflicts with a record saved meanwhile",
                                    hint="retry; a unique value may have been taken") from exc
            record_id = rec["id"]
            if also is not None:
                also(conn, record_id)
        self._process(entity_name, record_id)
        return self._present(actor, entity, rec)

    def get(self, actor: Actor, entity_name: str, record_id: int) -> dict[str, Any]:
        """One record as the actor may see it; NotFoundError if absent or not visible."""
        entity = self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "read")
        with self.rt.engine.begin() as conn:
            rec = self._record(entity, self._load(conn, actor, entity_name, record_id, "read"))
            if entity.sensitive:
                conn.execute(audit_log.insert().values(
                    entity=entity_name, record_id=record_id, action="read",
                    actor=actor.user_id, channel=actor.channel, at=self.rt.clock(),
                    version_number=self.rt.version_number))
        return self._present(actor, entity, rec)

    def readable_versions(self, actor: Actor, entity_name: str,
                          ids: Iterable[int]) -> dict[int, int]:
        """``row_version`` of each of ``ids`` the actor may read now (row filter, not deleted).

        Ids it may not read, and any of an entity it may not read at all, are left
        out; nothing is audited (no field value is read). For live updates.
        """
        wanted = {int(i) for i in ids if 0 < int(i) <= MAX_ID}
        if not wanted or entity_name not in self.rt.app.entities or \
                not self.rt.authz.can(actor, entity_name, "read"):
            return {}
        table = self.rt.tables[entity_name]
        query = select(table.c.id, table.c.row_version).where(table.c.id.in_(wanted)).where(
            self._visible(actor, entity_name, "read"))
        with reading(self.rt.engine) as conn:
            return {int(i): int(v) for i, v in conn.execute(query)}

    def list(self, actor: Actor, entity_name: str, *, filter: str | None = None,
             sort: str | None = None, limit: int = defaults.PAGE_SIZE,
             cursor: str | None = None) -> Page:
        """A page of visible records: ``filter`` is a DSL condition, ``sort`` a field
        name (``-`` prefix for descending); ``cursor`` continues a previous page.

        The query runs under ``defaults.LIST_QUERY_TIMEOUT``: QueryTimeout past it.
        """
        from .sql_filter import parse_filter

        entity = self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "read")
        table = self.rt.tables[entity_name]
        limit = max(1, min(int(limit), defaults.MAX_PAGE_SIZE))
        readable = self.rt.authz.readable_fields(actor, entity_name)
        query = select(table).where(self._visible(actor, entity_name, "read"))
        if filter:
            expr = parse_filter(self.rt.app, entity_name, filter)
            query = query.where(self.rt.authz.filter_clause(
                actor, entity_name, expr, table, self.rt.tables, now=self.rt.clock()))
        descending = bool(sort and sort.startswith("-"))
        sort_field = (sort or "id").lstrip("-")
        if sort_field not in table.c or (sort_field not in readable and sort_field != "id"):
            raise ValidationError(f"cannot sort by '{sort_field}'", errors=[FieldError(
                "sort", "sort", f"cannot sort by '{sort_field}'")])
        column = table.c[sort_field]
        if cursor:
            last_value, last_id = _decode_cursor(cursor)
            after = (column < last_value) if descending else (column > last_value)
            tie = (table.c.id < last_id) if descending else (table.c.id > last_id)
            if last_value is None:
                query = query.where(and_(column.is_(None), tie))
            else:
                query = query.where(or_(after, and_(column == last_value, tie),
                                        column.is_(None) if not descending else false()))
        order = desc if descending else asc
        query = query.order_by(order(column).nulls_last() if not descending
                               else order(column).nulls_last(), order(table.c.id))
        query = query.limit(limit + 1)
        with time_limited(self.rt.engine, defaults.LIST_QUERY_TIMEOUT) as conn:
            rows = conn.execute(query).mappings().all()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [self._present(actor, entity, self._record(entity, r)) for r in rows]
        next_cursor = _encode_cursor(rows[-1][sort_field], rows[-1]["id"]) \
            if more and rows else None
        return Page(items, next_cursor)

    def update(self, actor: Actor, entity_name: str, record_id: int, payload: Any, *,
               expected_version: int | None, locale: str | None = None) -> dict[str, Any]:
        """Apply a partial update; ConflictError when ``expected_version`` is stale."""
        entity = self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "update")
        locale = locale or self.rt.app.default_locale
        now = self.rt.clock()
        checked = validate_payload(self.rt.app, entity_name, payload, mode="update",
                                   locale=locale,
                                   writable=self.rt.authz.writable_fields(actor, entity_name),
                                   now=now)
        if checked.errors:
            raise ValidationError("the changes are not valid", errors=checked.errors)
        table = self.rt.tables[entity_name]
        with self.rt.engine.begin() as conn:
            row = self._load(conn, actor, entity_name, record_id, "update", lock=True)
            if expected_version is not None and row["row_version"] != expected_version:
                raise ConflictError(f"{entity_name} {record_id} was changed by someone else "
                                    f"(version {row['row_version']}, not {expected_version})",
                                    hint="reload the record and apply your change again")
            before = self._record(entity, row)
            ref_errors = self._check_references(conn, entity, checked.values) + \
                self._check_unique(conn, entity, checked.values, locale, exclude_id=record_id)
            ref_errors += attachment_errors(self.rt, conn, actor, entity, checked.values,
                                            before, locale)
            if ref_errors:
                raise ValidationError("the changes are not valid", errors=ref_errors)
            after = {**before, **checked.values}
            if not self.rt.authz.row_allowed(actor, entity_name, "update", after,
                                             resolve=self._resolver(conn), now=now,
                                             referrers=self._referrers(conn)):
                raise ValidationError("this change would move the record out of your reach",
                                      errors=[FieldError("", "row_filter", self.rt.message(
                                          "row_filter", locale=locale))])
            diff = changes({k: before.get(k) for k in checked.values}, checked.values)
            if not diff:
                return self._present(actor, entity, before)
            try:
                stored = conn.execute(
                    update(table).where(table.c.id == record_id)
                    .where(table.c.row_version == row["row_version"])
                    .values(**to_row(entity, checked.values), updated_at=now,
                            row_version=row["row_version"] + 1)
                    .returning(*table.c)).mappings().first()
            except IntegrityError as exc:
                raise ConflictError(f"{entity_name} {record_id} conflicts with a record saved "
                                    "meanwhile", hint="retry; a unique value may have been "
                                    "taken") from exc
            if stored is None:
                raise ConflictError(f"{entity_name} {record_id} was changed by someone else",
                                    hint="reload the record and apply your change again")
            self._write_log(conn, actor, entity_name, record_id, "update", "updated", diff, now)
        self._process(entity_name, record_id)
        return self._present(actor, entity, self._record(entity, stored))

    def delete(self, actor: Actor, entity_name: str, record_id: int, *,
               expected_version: int | None = None) -> None:
        """Soft-delete (the row stays, marked deleted, with its audit trail)."""
        self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "delete")
        now = self.rt.clock()
        table = self.rt.tables[entity_name]
        with self.rt.engine.begin() as conn:
            row = self._load(conn, actor, entity_name, record_id, "delete", lock=True)
            if expected_version is not None and row["row_version"] != expected_version:
                raise ConflictError(f"{entity_name} {record_id} was changed by someone else",
                                    hint="reload the record before deleting it")
            conn.execute(update(table).where(table.c.id == record_id)
                         .values(deleted_at=now, updated_at=now,
                                 row_version=row["row_version"] + 1))
            self._write_log(conn, actor, entity_name, record_id, "delete", "deleted", {}, now)
        self._process(entity_name, record_id)

    def timeline(self, actor: Actor, entity_name: str,
                 record_id: int) -> builtins.list[dict[str, Any]]:
        """What happened to a visible record, oldest first: changes (audit rows, masked
        to readable fields) merged with the platform's entries (``df_timeline``), whose
        dispatch entries name no candidate the actor may not read (:mod:`.candidate_masks`)."""
        self._entity(entity_name)
        self.rt.authz.require(actor, entity_name, "read")
        readable = self.rt.authz.readable_fields(actor, entity_name)
        with reading(self.rt.engine) as conn:
            self._load(conn, actor, entity_name, record_id, "read")
            rows = conn.execute(select(audit_log).where(audit_log.c.entity == entity_name)
                                .where(audit_log.c.record_id == record_id)
                                .order_by(audit_log.c.id)).mappings().all()
            notes = conn.execute(select(timeline).where(timeline.c.entity == entity_name)
                                 .where(timeline.c.record_id == record_id)
                                 .order_by(timeline.c.id)).mappings().all()
        items = [(as_utc(r["at"]), 0, r["id"], {
            "at": json_value(as_utc(r["at"])), "kind": "change", "action": r["action"],
            "actor": r["actor"], "channel": r["channel"], "version": r["version_number"],
            "changes": {k: v for k, v in (r["changes"] or {}).items() if k in readable}})
            for r in rows]
        # What the platform did and why: rules that fired, flow steps, dispatch, SLA...
        candidates = CandidateMask(self.rt, actor, entity_name)
        items.extend((as_utc(n["at"]), 1, n["id"], candidates.note({
            "at": json_value(as_utc(n["at"])), "kind": n["kind"], "summary": n["summary"],
            "detail": n["detail"] or {}})) for n in notes)
        items.sort(key=lambda item: item[:3])
        return [item[3] for item in items]

    # ------------------------------------------------------------------ the create path
    # What creating a record takes apart from the checks against stored data, in the
    # order :meth:`create` runs it; the CSV import (intake.csv_import) runs the same
    # steps for many rows, with batched checks, in a transaction of its own.

    def validate_new(self, entity: EntityDef, payload: Any, *, writable: Collection[str],
                     locale: str, now: datetime, form: str | None = None) -> Validated:
        """``payload`` validated as a new ``entity`` record (:func:`validate_payload`,
        ``writable`` the fields the actor may set), then the declared default of every
        field it leaves out filled in. With errors, the values are not filled in."""
        checked = validate_payload(self.rt.app, entity.name, payload, mode="create", form=form,
                                   locale=locale, writable=writable, now=now)
        if checked.errors:
            return checked
        values = dict(checked.values)
        for f in entity.fields.values():
            if not f.system and f.name not in values and f.default is not None:
                values[f.name] = self.rt.default_value(f)
        return Validated(values, [])

    def may_create(self, conn: Connection, actor: Actor, entity: EntityDef,
                   values: dict[str, Any], now: datetime) -> bool:
        """Whether the actor's row filters let it create an ``entity`` record of ``values``
        (references are read through ``conn``)."""
        candidate = {**values, "tags": [], "created_by": actor.user_id}
        return self.rt.authz.row_allowed(actor, entity.name, "create", candidate,
                                         resolve=self._resolver(conn), now=now,
                                         referrers=self._referrers(conn))

    def insert_new(self, conn: Connection, actor: Actor, entity: EntityDef,
                   values: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Store a checked new record with its audit row and outbox event in ``conn``'s
        transaction; returns the record as stored (runtime values).

        Checks nothing: the caller has (:meth:`create`, the CSV import). The database's
        own refusal propagates (IntegrityError when a concurrent writer took a unique
        value first). Processing the event after the commit is the caller's.
        """
        row = {**to_row(entity, values), "created_at": now, "updated_at": now,
               "created_by": actor.user_id, "row_version": 1, "tags": []}
        stored = conn.execute(insert_returning(self.rt.tables[entity.name]),
                              row).mappings().one()
        rec = self._record(entity, stored)
        self._write_log(conn, actor, entity.name, stored["id"], "create", "created",
                        changes({}, {k: v for k, v in rec.items() if k in values}), now)
        return rec



def _encode_cursor(value: Any, record_id: int) -> str:
    raw = json.dumps([json_value(value), record_id, isinstance(value, datetime)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, record_id, is_datetime = json.loads(raw)
        if is_datetime and value is not None:
            value = datetime.fromisoformat(value)
        return value, int(record_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationError("invalid cursor", errors=[FieldError(
            "cursor", "cursor", "invalid cursor: use next_cursor from the previous page")]) \
            from exc
