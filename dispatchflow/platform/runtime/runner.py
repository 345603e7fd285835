"""The event runner: processes a record's outbox events, in order, each in one transaction.

:func:`process_record` drains one record: it locks the record's row, takes its
oldest unprocessed event, processes it and marks it processed in the same
transaction, and repeats until none is left. So events of one record are
processed one at a time and in the order they were stored, whichever worker
runs them; an event whose transaction did not commit (a worker killed, a lost
connection) stays unprocessed and is taken again, and one that committed is
never taken again. That is what makes processing idempotent.

Processing one event (docs/operations.md, "Events"):

1. rule sets declared ``on entity.event`` run on the record (each sees the
   previous one's sets); every rule that fired goes on the timeline with the
   conditions it matched; their effects are applied;
2. notifications declared ``on: entity.event`` are planned;
3. the event is offered to the record's flow instances (``created`` first
   starts the entity's flows); timers (``__timer__`` events) go to their owner:
   a flow instance, an SLA clock, an offer or an escalation level.

:func:`take_action` applies a user's flow action synchronously (the caller
learns at once whether it was allowed) in one transaction with the same lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from ...errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from .. import defaults
from ..records.actors import Actor
from ..store.db import outbox, reading
from ..store.statements import MARK_PROCESSED, PENDING_EVENTS_OF, PENDING_RECORDS
from . import instance_rows, instances
from .escalation import fire_escalation_timer
from .facts import FactLoader
from .queue import Jobs
from .sla_clocks import fire_clock_timer
from .step import DeferredWrites, Step
from .timers import TIMER_EVENT

if TYPE_CHECKING:
    from ..assembly import Runtime

log = logging.getLogger(__name__)


def process_record(rt: Runtime, entity: str, record_id: int, *,
                   wait: bool = True) -> int | None:
    """Process the record's pending events in order (see module docs); returns how many.

    Up to :data:`defaults.EVENTS_PER_TRANSACTION` events share one transaction
    (one lock, one commit), including the events that processing them emits for
    the same record. When one of them fails, the batch is rolled back and the
    events are taken again one per transaction, so the failing one is counted
    (and parked after too many tries) without holding up the others.

    With ``wait=False`` a record locked by another transaction is left alone
    (PostgreSQL): the result is then None if nothing could be done.
    """
    done, batch = 0, defaults.EVENTS_PER_TRANSACTION
    while True:
        try:
            count, more, jobs = _drain(rt, entity, record_id, batch, wait)
        except _BatchFailed:
            batch = 1
            continue
        except _Busy:
            return done or None
        done += count
        if jobs:
            rt.queue.enqueue_many(jobs)
        if not more:
            return done


def process_pending(rt: Runtime) -> int:
    """Process every record with pending events, oldest event first; returns how many.

    How RQ workers take events (:class:`~.queue.RQQueue` wakes one such job
    instead of a job per record): rounds of up to :data:`defaults.DRAIN_RECORDS`
    records, up to :data:`defaults.RECORDS_PER_TRANSACTION` records of one entity
    processed in one transaction (:func:`_drain_records`; when one of their
    events fails, each is taken again on its own by :func:`process_record`). A
    record another worker or a user's action holds is skipped (others go on
    meanwhile; a round that could take none pauses :data:`defaults.DRAIN_PAUSE`
    first); if it is still pending and held after :data:`defaults.DRAIN_SKIPS`
    rounds, the job waits for it (a holder keeps a record for one transaction:
    milliseconds). Jobs the drains ask for are queued after each commit, except
    requests to process records' events (this loop takes them) and, in a worker
    that also serves the ``dispatch`` queue, dispatch rounds: it runs those itself
    right away (:func:`_follow_up`). The job ends when no record is pending, or after
    :data:`defaults.DRAIN_SECONDS`, when it wakes another such job first. A
    record whose events fail is left for the next job (its failures are counted),
    and the job then fails, so RQ retries it and the failure shows in
    ``dispatchflow jobs failed``.
    """
    done, deadline = 0, time.monotonic() + defaults.DRAIN_SECONDS
    failed: list[tuple[str, int]] = []
    held: dict[tuple[str, int], int] = {}  # rounds in a row a record was found held
    while True:
        records = _pending_records(rt, exclude=failed)
        if not records:
            break
        if held and all(r in held for r in records):  # all held: let their holders finish
            time.sleep(defaults.DRAIN_PAUSE)
        was_held, held = held, {}
        alone = [r for r in records if was_held.get(r, 0) >= defaults.DRAIN_SKIPS]
        for entity, ids in _chunks([r for r in records if r not in alone]):
            try:
                locked, processed, jobs = _drain_records(rt, entity, ids)
            except Exception:  # one of them failed: take each on its own
                log.warning("events of %s %s failed together; one by one", entity, ids,
                            exc_info=True)
                alone.extend((entity, i) for i in ids)
                continue
            _follow_up(rt, jobs)
            done += processed
            held.update({(entity, i): was_held.get((entity, i), 0) + 1
                         for i in ids if i not in locked})
        for entity, record_id in alone:
            try:
                count = process_record(rt, entity, record_id,
                                       wait=(entity, record_id) in was_held)
            except Exception:
                log.exception("events of %s %s failed", entity, record_id)
                failed.append((entity, record_id))
                continue
            if count is None:
                held[(entity, record_id)] = was_held.get((entity, record_id), 0) + 1
            done += count or 0
        if time.monotonic() > deadline:
            rt.queue.enqueue("events", "process_pending")
            break
    if failed:
        raise RuntimeError(f"events of {len(failed)} record(s) failed: "
                           + ", ".join(f"{e} {i}" for e, i in failed[:10]))
    return done


def _chunks(records: list[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    """Records grouped by entity, at most :data:`defaults.RECORDS_PER_TRANSACTION` a group."""
    by_entity: dict[str, list[int]] = {}
    for entity, record_id in records:
        by_entity.setdefault(entity, []).append(record_id)
    size = defaults.RECORDS_PER_TRANSACTION
    return [(entity, ids[i:i + size]) for entity, ids in by_entity.items()
            for i in range(0, len(ids), size)]


def _drain_records(rt: Runtime, entity: str, record_ids: list[int]
                   ) -> tuple[list[int], int, Jobs]:
    """Process the pending events of several records of one entity in one transaction.

    Locks those no other transaction holds (the others are left), reads their
    events, flow instances and timers in one query each, processes every event
    (and the events that emits for the same records) in order per record, and
    marks them processed. Returns the records it locked, how many events it
    processed and the jobs to run after the commit; raises when any event fails
    (everything is then rolled back).
    """
    with rt.engine.begin() as conn:
        facts = FactLoader(rt, conn)
        locked = facts.lock_many(entity, record_ids)
        if not locked:
            return locked, 0, []
        instance_rows.preload(facts, entity, locked)
        taken, jobs = _take_events(rt, conn, facts, entity, locked,
                                   defaults.EVENTS_PER_TRANSACTION * len(record_ids), [])
    return locked, len(taken), jobs


def _follow_up(rt: Runtime, jobs: Jobs) -> None:
    """The jobs a drain (or a round run here) asked for, from inside :func:`process_pending`:
    requests to process records' events are dropped (its loop takes those records next),
    dispatch rounds are run here when this process serves the ``dispatch`` queue (one
    that fails is queued, for RQ's retries and ``jobs failed``), the rest are queued."""
    here = "dispatch" in rt.serves
    queued = [j for j in jobs if j[1] != "process_record"
              and not (here and j[1] == "dispatch_round")]
    if queued:
        rt.queue.enqueue_many(queued)
    for job in jobs:
        if not (here and job[1] == "dispatch_round"):
            continue
        try:
            more = _round_here(rt, job[2])
        except Exception:
            log.warning("dispatch round %s failed here; queued", job[2], exc_info=True)
            rt.queue.enqueue_many([job])
            continue
        _follow_up(rt, more)


def _round_here(rt: Runtime, args: tuple[Any, ...]) -> Jobs:
    """Run a dispatch round and, in its transaction (it holds the record's lock), the
    record's pending events, the ``offered`` it just stored among them: one transaction
    instead of two. If those events fail, the round runs again on its own and they go
    the usual way (counted, retried, parked)."""
    def then_events(step: Step, jobs: Jobs) -> Jobs:
        _, more = _take_events(rt, step.conn, step.facts, step.entity, [step.record_id],
                               defaults.EVENTS_PER_TRANSACTION, [])
        return [j for j in jobs if j[1] != "process_record"] + more

    entity, record_id, round_id = str(args[0]), int(args[1]), int(args[2])
    try:
        return rt.services.run_round(rt, entity, record_id, round_id, then=then_events)
    except Exception:
        log.warning("events after dispatch round %s failed; the round alone", args,
                    exc_info=True)
        return rt.services.run_round(rt, entity, record_id, round_id)


def _take_events(rt: Runtime, conn: Any, facts: FactLoader, entity: str, ids: list[int],
                 limit: int, attempted: list[int], chain: bool = True
                 ) -> tuple[list[int], Jobs]:
    """Process up to ``limit`` pending events of the locked records ``ids`` (and the
    events that emits for them, in the same transaction), in order per record; write
    the deferred rows and mark the events processed.

    With ``chain``, events this stored for other records whose rows the transaction
    holds (a technician whose profile a completed order updated) are processed in it
    too, after these (:func:`_take_held`): no one else can take them meanwhile, and
    a transaction of their own would cost more than they do.

    Returns the events processed and the jobs to enqueue after the commit (none to
    process these records again). ``attempted`` gets each event id as it is taken,
    so the caller knows which one failed. Events stored by others after these reads
    come with their own job (every commit that stores an event enqueues one).
    """
    jobs: Jobs = []
    taken: list[int] = []
    deferred = DeferredWrites()
    own = {("events", "process_record", (entity, i)) for i in ids}
    after = 0
    while len(taken) < limit:
        events = conn.execute(PENDING_EVENTS_OF, {
            "entity": entity, "ids": ids, "after": after,
            "limit": limit - len(taken)}).mappings().all()
        emitted = False
        for ev in events:
            attempted.append(ev["id"])
            step_jobs = _process(rt, conn, dict(ev), facts, deferred)
            emitted = emitted or any(j in own for j in step_jobs)
            jobs.extend(j for j in step_jobs if j not in own)
            taken.append(ev["id"])
            after = ev["id"]
        if not emitted:  # nothing new for these records was stored by this batch
            break
    deferred.flush(conn)
    if taken:
        conn.execute(MARK_PROCESSED, {"ids": taken, "at": datetime.now(UTC)})
    jobs = list(dict.fromkeys(jobs))
    if chain:
        jobs = _take_held(rt, conn, facts, jobs, taken, attempted)
    return taken, jobs


def _take_held(rt: Runtime, conn: Any, facts: FactLoader, jobs: Jobs, taken: list[int],
               attempted: list[int]) -> Jobs:
    """Process the pending events of the records ``jobs`` asks to process whose rows
    this transaction holds (adding them to ``taken``); returns the other jobs, plus what
    processing those asked for."""
    held: dict[str, list[int]] = {}
    rest: Jobs = []
    for job in jobs:
        _, name, args = job
        if name == "process_record" and (args[0], int(args[1])) in facts.held:
            held.setdefault(args[0], []).append(int(args[1]))
        else:
            rest.append(job)
    for entity, ids in held.items():
        limit = defaults.EVENTS_PER_TRANSACTION * len(ids)
        more, their_jobs = _take_events(rt, conn, facts, entity, ids, limit, attempted,
                                        chain=False)
        taken.extend(more)
        rest.extend(their_jobs)
        if len(more) >= limit:  # not all done here: a job takes the rest
            rest.extend(("events", "process_record", (entity, i)) for i in ids)
    return list(dict.fromkeys(rest))


def _pending_records(rt: Runtime, exclude: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Records with unprocessed, unparked events, oldest event first (a round's worth)."""
    with reading(rt.engine) as conn:
        rows = conn.execute(PENDING_RECORDS, {
            "limit": defaults.DRAIN_RECORDS + len(exclude)}).all()
    skip = set(exclude)
    return [(str(e), int(r)) for e, r in rows if (e, int(r)) not in skip]


class _BatchFailed(Exception):
    """An event of a multi-event batch failed: retry them one at a time."""


class _Busy(Exception):
    """The record is locked by another transaction (and the caller would not wait)."""


def _drain(rt: Runtime, entity: str, record_id: int, batch: int, wait: bool = True
           ) -> tuple[int, bool, Jobs]:
    """Process up to ``batch`` pending events of the record in one transaction.

    Returns how many were processed, whether more may be pending (the batch was
    full) and the jobs to enqueue after the commit (see :func:`_take_events`: an
    unfilled batch means the record is done).
    """
    attempted: list[int] = []
    try:
        with rt.engine.begin() as conn:
            if rt.engine.dialect.name == "postgresql" and not rt.derived_work:
                # Processing is derived from committed intake and is idempotent: if the
                # server crashes before this commit reaches disk, the events are simply
                # still unprocessed and are taken again. Intake commits stay synchronous.
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            facts = _lock_record(rt, conn, entity, record_id, wait)
            if facts is None:
                return 0, False, []
            taken, jobs = _take_events(rt, conn, facts, entity, [record_id], batch, attempted)
    except _Busy:
        raise
    except Exception as exc:
        if batch > 1:
            raise _BatchFailed() from exc
        if attempted:
            _record_failure(rt, attempted[-1], exc)
        raise
    return len(taken), len(taken) >= batch, jobs


def _lock_record(rt: Runtime, conn: Any, entity: str, record_id: int,
                 wait: bool = True) -> FactLoader | None:
    """Lock the record's row (a loader holding it), or None when it does not exist.

    Raises :class:`_Busy` when ``wait`` is false and another transaction holds it.
    """
    if entity not in rt.tables:
        return None
    facts = FactLoader(rt, conn)
    if facts.row(entity, record_id, lock=True, skip_locked=not wait) is None:
        facts.forget(entity, record_id)
        if not wait and facts.row(entity, record_id) is not None:
            raise _Busy()
        # The record does not exist: its events can never be processed.
        conn.execute(update(outbox).where(outbox.c.entity == entity)
                     .where(outbox.c.record_id == record_id)
                     .where(outbox.c.processed_at.is_(None))
                     .values(failed_at=datetime.now(UTC), last_error="no such record"))
        return None
    return facts


def _record_failure(rt: Runtime, event_id: int, exc: Exception) -> None:
    """Count a failed attempt; park the event after too many (the record's others go on)."""
    with rt.engine.begin() as conn:
        row = conn.execute(select(outbox.c.attempts).where(outbox.c.id == event_id)).first()
        attempts = (row[0] if row else 0) + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": f"{type(exc).__name__}: "
                                  f"{exc}"[:2000]}
        if attempts >= defaults.EVENT_MAX_ATTEMPTS:
            values["failed_at"] = datetime.now(UTC)
        conn.execute(update(outbox).where(outbox.c.id == event_id)
                     .where(outbox.c.processed_at.is_(None)).values(**values))
    log.exception("event %s failed (attempt %s)", event_id, attempts)


def _process(rt: Runtime, conn: Any, ev: dict[str, Any], facts: FactLoader,
             deferred: DeferredWrites) -> Jobs:
    payload = dict(ev["payload"] or {})
    at = ev["created_at"] if ev["created_at"].tzinfo else ev["created_at"].replace(tzinfo=UTC)
    step = Step.open(rt, conn, ev["entity"], int(ev["record_id"]), at, event_id=ev["id"],
                     depth=int(payload.get("depth", 0)), version_number=ev["version_number"],
                     facts=facts, deferred=deferred)
    if step is None:
        return []
    if ev["event"] == TIMER_EVENT:
        _fire_timer(step, payload)
    else:
        handle_event(step, ev["event"], payload)
    _start_requested_flows(step)
    step.flush()
    return step.jobs


def handle_event(step: Step, event: str, payload: Mapping[str, Any]) -> None:
    """Rules, notifications and flows for one event of the step's record."""
    from ..notify import service as notify

    rt, entity = step.rt, step.entity
    full = f"{entity}.{event}"
    for result in rt.rules.run_event(entity, event, step.record, step.now):
        compiled = rt.rules.ruleset(result.ruleset)
        for rule in result.fired:
            step.note("rule", f"rule set {result.ruleset}: rule “{rule}” fired",
                      {"ruleset": result.ruleset, "rule": rule, "event": full,
                       "matched": _conditions(compiled, rule)})
        step.apply(result.effects)
    for name in notify.notifications_on(rt.app, entity, event):
        step.notifications.append((name, f"on {full}"))
    if event == "created":
        instances.start_flows(step, None, f"on {full}")
    instances.feed_event(step, full)
    _dispatch_hooks(step, event, payload)


def _conditions(compiled: Any, rule: str) -> list[str]:
    """The conditions of ``rule`` as written (all held, since it fired)."""
    for decl, texts in zip(compiled.ordered, compiled.condition_texts, strict=True):
        if decl.name == rule:
            return list(texts)
    return []


def _start_requested_flows(step: Step) -> None:
    while step.flows_to_start:
        flow, by = step.flows_to_start.pop(0)
        instances.start_flows(step, [flow], by)


def _dispatch_hooks(step: Step, event: str, payload: Mapping[str, Any]) -> None:
    step.rt.services.on_record_event(step, event, payload)


#: The runtime's own timer kinds; others (e.g. ``offer``) come from the services.
_TIMER_HANDLERS: dict[str, Callable[[Step, Mapping[str, Any]], None]] = {
    "flow": instances.fire_timer, "sla": fire_clock_timer,
    "escalation": fire_escalation_timer,
}


def _fire_timer(step: Step, payload: Mapping[str, Any]) -> None:
    kind = payload.get("kind", "flow")
    handler = _TIMER_HANDLERS.get(kind) or step.rt.services.timer_handlers[kind]
    handler(step, payload)


# ---------------------------------------------------------------------- actions

@dataclass(frozen=True)
class ActionResult:
    """What an action did: the flow states now active and the transitions taken."""

    states: tuple[str, ...]
    taken: list[dict[str, Any]]
    record: dict[str, Any]


def take_action(rt: Runtime, actor: Actor, entity: str, record_id: int, action: str,
                form_values: Mapping[str, Any] | None = None, *,
                flow: str | None = None, locale: str | None = None,
                expected_version: int | None = None) -> ActionResult:
    """Take the flow action ``action`` on a record as ``actor``, now, in one transaction.

    Who may is decided by :func:`~.action_access.check_action` (the action's role
    and row rules on the record now; a pending offer grants only ``accept`` and
    ``reject``). An action whose transition has a form is validated against it
    whatever the values (none, ``{}`` or partial: one error per missing required
    field); an action without a form takes no values. ``expected_version`` is the
    ``row_version`` the caller last saw: when the record changed since, nothing
    is done. Raises NotFoundError (no such record, or not visible),
    PermissionDenied (not allowed), ConflictError (the record changed since
    ``expected_version``, the flow does not offer the action now, its guard is
    false, or the actor's offer ended), ValidationError (form values not valid
    for the action's form, with field errors) — in every case nothing is written.
    """
    rt.authz.require(actor, entity, action)
    now = rt.clock()
    with rt.engine.begin() as conn:
        step = Step.open(rt, conn, entity, record_id, now)
        if step is None or step.stored.get("deleted_at") is not None:
            raise NotFoundError(f"no {entity} {record_id}")
        rt.services.check_action(step, actor, action)
        check_version(step, expected_version)
        form_values = _checked_form(step, flow, action, actor, form_values or {}, locale)
        rt.services.before_action(step, actor, action)
        outcome = instances.take_action(step, flow, action, frozenset(actor.roles),
                                        form_values)
        if not outcome.ok:
            if outcome.rejected_code == "forbidden":
                raise PermissionDenied(outcome.rejected or f"you may not {action} now")
            raise ConflictError(outcome.rejected or outcome.error or f"cannot {action} now",
                                hint="reload the record: its state may have changed")
        step.note("action", f"{actor.user_id}: {action}",
                  {"actor": actor.user_id, "action": action,
                   "form": sorted(form_values or {})})
        rt.services.after_action(step, actor, action)
        _start_requested_flows(step)
        step.flush()
        jobs = step.jobs
        result = ActionResult(outcome.state.states,
                              [t._asdict() for t in outcome.taken], dict(step.record))
    if jobs:
        rt.queue.enqueue_many(jobs)
    return result


def check_version(step: Step, expected: int | None) -> None:
    """ConflictError when the record's ``row_version`` is not ``expected`` (None: any)."""
    current = step.stored.get("row_version")
    if expected is not None and current != expected:
        raise ConflictError(f"this {step.entity} was changed by someone else since you loaded "
                            f"it (version {expected}, now {current}); nothing was done",
                            hint="reload the record and try again")


def _checked_form(step: Step, flow: str | None, action: str, actor: Actor,
                  values: Mapping[str, Any], locale: str | None) -> dict[str, Any] | None:
    """The action form's values, validated like any submission (ValidationError if not).

    The form is that of the transition the flow offers the actor now; no values
    at all are checked too (a required field is then missing). An action with no
    form takes no values (None). When the flow does not offer the action now but
    declares a form for it, the action is refused here (ConflictError): its values
    are never passed on unchecked.
    """
    from ...forms.validation import FieldError, validate_payload
    from ..records.attachments import attachment_errors

    option = instances.action_option(step, flow, action, frozenset(actor.roles))
    form = option.form if option is not None else None
    if option is None and any(t.form for inst in instance_rows.instances_of(step, flow)
                              for t in instance_rows.compiled(step, inst).transitions()
                              if t.action == action):
        raise ConflictError(f"{action} is not possible now",
                            hint="reload the record: its state may have changed")
    if form is None:
        if values:
            raise ValidationError(f"the action {action} takes no form values", errors=[
                FieldError("", "form", f"{action} has no form: send an empty body")])
        return None
    locale = locale or step.rt.app.default_locale
    checked = validate_payload(step.rt.app, step.entity, dict(values), mode="update",
                               form=form, locale=locale, now=step.now, current=step.stored)
    errors = checked.errors or attachment_errors(
        step.rt, step.conn, actor, step.rt.app.entities[step.entity], checked.values,
        step.stored, locale)
    if errors:
        raise ValidationError("the form is not valid", errors=errors)
    return dict(checked.values)
