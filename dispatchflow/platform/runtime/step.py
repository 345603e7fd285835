"""One processing step: the transaction in which one event (or action) changes one record.

A :class:`Step` holds the record being worked on (with references expanded),
collects what rules and flows ask for (``rules.effects`` tuples), and writes it
all at :meth:`Step.flush`, inside the caller's transaction: the record's new
field values and tags with one audit row, the events emitted (outbox rows),
notification deliveries, timeline rows. Jobs to run after the commit are kept
in :attr:`Step.jobs`. Everything is keyed to the event's time ``now``, never the
wall clock, so processing the same events gives the same results.

Changes made here do not emit ``updated`` events: only changes from outside
(API, forms, imports) do, so rules reacting to updates cannot feed themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from ...rules import effects as fx
from .. import defaults
from ..store.db import audit_log, outbox, timeline
from ..store.db import timers as timer_rows
from ..store.jsonvalues import changes, json_value
from ..store.statements import UPDATE_INSTANCE, update_by_id
from ..store.storage import to_row
from .facts import FactLoader, flatten
from .timers import RecordTimers

if TYPE_CHECKING:
    from ..assembly import Runtime

#: Actor name written on audit rows of changes the platform makes.
SYSTEM_USER = "system"


class DeferredWrites:
    """Rows a transaction of several steps (the event drains) writes at its end, in as
    few statements as possible: timeline entries, audit rows, events of other
    records and new timers in one INSERT each, each changed flow instance once
    (the last state). Whoever commits calls :meth:`flush` first."""

    def __init__(self) -> None:
        self.timeline: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.timers: dict[tuple[str, int, str, str], dict[str, Any]] = {}
        self.instances: dict[int, dict[str, Any]] = {}

    def flush(self, conn: Connection) -> None:
        """Write what was collected (inside the transaction, before its commit)."""
        if self.timeline:
            conn.execute(timeline.insert(), self.timeline)
            self.timeline = []
        if self.audit:
            conn.execute(audit_log.insert(), self.audit)
            self.audit = []
        if self.outbox:
            conn.execute(outbox.insert(), self.outbox)
            self.outbox = []
        if self.timers:
            conn.execute(timer_rows.insert(), list(self.timers.values()))
            self.timers = {}
        if self.instances:
            conn.execute(UPDATE_INSTANCE, list(self.instances.values()))
            self.instances = {}


def insert_row(conn: Connection, table: Any, row: dict[str, Any],
               deferred: DeferredWrites | None) -> None:
    """Insert ``row`` into the audit log or the outbox now, or at ``deferred``'s flush."""
    if deferred is None:
        conn.execute(table.insert(), row)
    else:
        {audit_log: deferred.audit, outbox: deferred.outbox}[table].append(row)


@dataclass
class Step:
    """See module docs. Build with :meth:`open`."""

    rt: Runtime
    conn: Connection
    facts: FactLoader
    entity: str
    record_id: int
    now: datetime
    record: dict[str, Any]
    stored: dict[str, Any]
    event_id: int | None = None
    depth: int = 0
    version_number: int | None = None
    changed: dict[str, Any] = field(default_factory=dict)
    emitted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    notifications: list[tuple[str, str]] = field(default_factory=list)
    entries: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    jobs: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)
    dispatch_requests: list[tuple[str | None, str]] = field(default_factory=list)
    flows_to_start: list[tuple[str, str]] = field(default_factory=list)
    deferred: DeferredWrites | None = None

    @classmethod
    def open(cls, rt: Runtime, conn: Connection, entity: str, record_id: int, now: datetime,
             *, event_id: int | None = None, depth: int = 0,
             version_number: int | None = None,
             facts: FactLoader | None = None,
             deferred: DeferredWrites | None = None) -> Step | None:
        """Lock the record and start a step on it (None when the record does not exist).

        ``facts`` may be a loader that already holds the locked row; with
        ``deferred``, what :class:`DeferredWrites` collects is written at its flush.
        """
        if facts is None:
            facts = FactLoader(rt, conn)
            stored = facts.row(entity, record_id, lock=True)
        else:
            stored = facts.row(entity, record_id)
        if stored is None:
            return None
        record = facts.expand(entity, stored, facts.depth)
        return cls(rt, conn, facts, entity, record_id, now.astimezone(rt.tz), record, stored,
                   event_id=event_id, depth=depth, version_number=version_number,
                   deferred=deferred)

    @property
    def timers(self) -> RecordTimers:
        """The record's pending timers, as this transaction has them."""
        key = ("timers", self.entity, self.record_id)
        found = self.facts.memo.get(key)
        if found is None:
            found = self.facts.memo[key] = RecordTimers(self.conn, self.entity, self.record_id)
        if self.deferred is not None:
            found.unwritten = self.deferred.timers
        return found

    @property
    def utc(self) -> datetime:
        """The step's time in UTC: what is written to the database."""
        return self.now.astimezone(UTC)

    # ------------------------------------------------------------------ effects
    def apply(self, effects: list[fx.Effect]) -> None:
        """Take effects from a rule set or a flow, in order."""
        for effect in effects:
            handler = _HANDLERS.get(type(effect))
            if handler is not None:
                handler(self, effect)

    def set_field(self, name: str, value: Any, by: str) -> None:
        """Change one field of the working record (stored at flush)."""
        entity = self.rt.app.entities[self.entity]
        if name not in entity.fields or entity.fields[name].system:
            self.note("error", f"{by}: cannot set unknown field {name}", {"field": name})
            return
        self.record[name] = value
        self.changed[name] = flatten(value)

    def tag(self, tag: str, add: bool, by: str) -> None:
        """Add or remove a tag of the working record."""
        tags = list(self.record.get("tags") or [])
        if add and tag not in tags:
            tags.append(tag)
        elif not add and tag in tags:
            tags.remove(tag)
        else:
            return
        self.record["tags"] = tags
        self.changed["tags"] = tags

    def emit(self, event: str, by: str, payload: dict[str, Any] | None = None) -> None:
        """Emit ``event`` (a bare name: an event of this record) after this step."""
        self.emitted.append((event, {"by": by, **(payload or {})}))

    def note(self, kind: str, summary: str, detail: dict[str, Any] | None = None) -> None:
        """Add a line to the record's timeline."""
        self.entries.append((kind, summary, detail or {}))

    def after_commit(self, queue: str, job: str, *args: Any) -> None:
        """Run a job once this step's transaction has committed."""
        self.jobs.append((queue, job, args))

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Write everything collected (see module docs); the caller commits."""
        if self.changed:
            self._write_record()
        if self.dispatch_requests:
            for policy, by in self.dispatch_requests:
                self.rt.services.request_dispatch(self, policy, by)
            self.dispatch_requests.clear()
        for name, cause in self.notifications:
            self._plan_notification(name, cause)
        self.notifications.clear()
        self._write_events()
        rows = [{"entity": self.entity, "record_id": self.record_id, "at": self.utc,
                 "kind": kind, "summary": summary, "detail": _jsonable(detail),
                 "event_id": self.event_id} for kind, summary, detail in self.entries]
        if self.deferred is not None:
            self.deferred.timeline.extend(rows)
        elif rows:
            self.conn.execute(timeline.insert(), rows)
        self.entries.clear()

    def _write_record(self) -> None:
        entity = self.rt.app.entities[self.entity]
        table = self.rt.tables[self.entity]
        values = {k: v for k, v in self.changed.items() if k != "tags"}
        before = {k: flatten(self.stored.get(k)) for k in self.changed}
        row = to_row(entity, values)
        if "tags" in self.changed:
            row["tags"] = list(self.changed["tags"])
        version = int(self.stored["row_version"]) + 1
        row.update(updated_at=self.utc, row_version=version)
        self.conn.execute(update_by_id(table), {"where_id": self.record_id, **row})
        diff = changes(before, dict(self.changed))
        if diff:
            audit = {"entity": self.entity, "record_id": self.record_id, "action": "system",
                     # why: the timeline entries of the same step name the rules and
                     # transitions
                     "actor": SYSTEM_USER, "channel": "system",
                     "at": self.utc, "changes": diff, "version_number": self.rt.version_number}
            insert_row(self.conn, audit_log, audit, self.deferred)
        self.facts.written(self.entity, self.record_id, row)
        self.stored = self.facts.row(self.entity, self.record_id) or \
            {**self.stored, **self.changed, "row_version": version}
        self.changed.clear()

    def _write_events(self) -> None:
        if not self.emitted:
            return
        if self.depth + 1 > defaults.MAX_EVENT_DEPTH:
            self.note("error", f"stopped an event chain after {defaults.MAX_EVENT_DEPTH} "
                      "events: rules or flows emit events in a loop",
                      {"dropped": [e for e, _ in self.emitted]})
            self.emitted.clear()
            return
        self.conn.execute(outbox.insert(), [
            {"entity": self.entity, "record_id": self.record_id, "event": event,
             "payload": {**payload, "depth": self.depth + 1}, "created_at": self.utc,
             "attempts": 0, "version_number": self.rt.version_number}
            for event, payload in self.emitted])
        self.emitted.clear()
        self.after_commit("events", "process_record", self.entity, self.record_id)

    def _plan_notification(self, name: str, cause: str) -> None:
        from ..notify import service as notify

        ids = notify.plan(self.conn, self.rt, name, self.record, self.now, cause)
        if ids:
            self.note("notify", f"notification {name}: {len(ids)} message(s)",
                      {"notification": name, "deliveries": ids, "cause": cause})
        if ids:  # one job for the notification's messages
            self.after_commit("notifications", "deliver_notification", *ids)


def _set(step: Step, e: fx.SetField) -> None:
    if e.entity == step.entity:
        step.set_field(e.field, e.value, e.rule)
    else:
        step.note("error", f"{e.rule}: cannot set {e.entity}.{e.field} from a "
                  f"{step.entity} event", {"rule": e.rule})


def _tag(step: Step, e: fx.AddTag) -> None:
    step.tag(e.tag, True, e.rule)


def _untag(step: Step, e: fx.RemoveTag) -> None:
    step.tag(e.tag, False, e.rule)


def _emit(step: Step, e: fx.EmitEvent) -> None:
    if e.entity not in ("", step.entity):
        step.note("error", f"{e.rule}: cannot emit {e.entity}.{e.event} for a {step.entity}",
                  {"rule": e.rule})
        return
    step.emit(e.event, e.rule)


def _notify(step: Step, e: fx.Notify) -> None:
    step.notifications.append((e.notification, e.rule))


def _start_flow(step: Step, e: fx.StartFlow) -> None:
    step.flows_to_start.append((e.flow, e.rule))


def _dispatch(step: Step, e: fx.RequestDispatch) -> None:
    step.dispatch_requests.append((e.policy, e.rule))


_HANDLERS: dict[type, Any] = {
    fx.SetField: _set, fx.AddTag: _tag, fx.RemoveTag: _untag, fx.EmitEvent: _emit,
    fx.Notify: _notify, fx.StartFlow: _start_flow, fx.RequestDispatch: _dispatch,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return json_value(value)
