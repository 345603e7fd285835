"""Escalation ladders at run time: level timers, alerts, acknowledgement.

A flow's ``escalations`` (docs/bundle.md, "Escalation ladders") are driven from
:func:`update_ladders`, which runs after every step of a flow instance (right
after its SLA clocks are updated) and keeps one ``escalation`` timer per level
that has yet to fire (key ``<instance>:<ladder>:<level>``):

* a ``while_in`` ladder starts when the instance comes to one of its states
  (anchored at that moment) and ends when the instance is in none of them, which
  cancels its pending levels; coming back starts a new ladder. Moving between
  its states, or re-entering one within a step, continues the same stay;
* a ``clock`` ladder follows its SLA clock: it is anchored at the deadline while
  the clock counts (running, or breached), re-armed when the deadline moves (a
  priority change) and cancelled while the clock is paused; it ends when the
  clock stops or the instance ends.

When a level's timer fires, :func:`fire_escalation_timer` sends the level's
notification (its ``to`` picks the recipients; quiet hours, digests and
de-duplication are the notification service's), emits its event, writes the
timeline and records the level as fired, so it is never repeated for the same
stay and deadline. :func:`acknowledge` stops a running ladder until its next
stay.

Bookkeeping lives in the instance row's ``sla`` JSON under ``ladder:<name>``:
``{"since": ..., "anchor": ..., "fired": [level numbers], "acked": {"by", "at"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from ...dsl.suggest import did_you_mean
from ...errors import ConflictError, NotFoundError
from ...flows import CompiledFlow
from ...flows.escalation import clock_anchor, in_stalled_state, plan_levels
from ...flows.model import EscalationDef
from ...flows.sla import ClockState
from ..records.actors import Actor
from .sla_clocks import clock_states
from .step import Step

if TYPE_CHECKING:
    from ..assembly import Runtime
    from .instance_rows import Instance

#: Timer kind of escalation levels (``runner._TIMER_HANDLERS``).
TIMER_KIND = "escalation"
#: Timeline kind of escalation entries.
NOTE_KIND = "escalation"


def update_ladders(step: Step, inst: Instance, flow: CompiledFlow,
                   clocks: Mapping[str, ClockState] | None = None) -> None:
    """Start, re-arm or stop the instance's ladders after a step (see module docs).

    ``clocks`` are the instance's SLA clocks now, when the caller has them.
    Changes ``inst.sla`` in place; the caller writes the instance row.
    """
    if not flow.escalations:
        return
    for ladder in flow.escalations.values():
        if ladder.clock is None:
            _update_stay(step, inst, ladder)
            continue
        if clocks is None:
            clocks = clock_states(step, flow, inst.history, step.now)
        _update_clock(step, inst, ladder, clocks.get(ladder.clock))


def fire_escalation_timer(step: Step, payload: Mapping[str, Any]) -> None:
    """A level came due: alert, unless the ladder stopped, moved or was acknowledged."""
    from .instance_rows import compiled, instances_of, save

    for inst in instances_of(step):
        if inst.id != payload.get("instance"):
            continue
        ladder = compiled(step, inst).escalations.get(str(payload.get("ladder")))
        book = None if ladder is None else _book(inst, ladder.name)
        number = int(payload.get("level", 0))
        if (ladder is None or book is None or book.get("acked") or inst.state.final
                or book.get("anchor") != payload.get("anchor")
                or number in book["fired"] or not 1 <= number <= len(ladder.levels)):
            return  # a stale timer: the stay, the deadline or the ladder changed
        level = ladder.levels[number - 1]
        cause = f"escalation {ladder.name} level {number}"
        if level.notify is not None:
            step.notifications.append((level.notify, cause))
        if level.emit is not None:
            step.emit(level.emit, cause, {"ladder": ladder.name, "level": number})
        step.note(NOTE_KIND, f"escalation {ladder.name}: level {number}",
                  {"ladder": ladder.name, "label": ladder.label, "level": number,
                   "notification": level.notify, "event": level.emit,
                   "anchor": book.get("anchor"), "flow": inst.flow})
        _save(inst, ladder, {**book, "fired": sorted({*book["fired"], number})})
        save(step, inst)
        return


def acknowledge(rt: Runtime, actor: Actor, entity: str, record_id: int, ladder: str) -> None:
    """Stop the running escalation ``ladder`` of a record as ``actor``, now.

    The actor needs ``update`` on the entity and must see the record. Pending
    levels are cancelled and the timeline says who acknowledged; the ladder
    starts again only with the next stay (``while_in``) or clock run. Raises
    PermissionDenied, NotFoundError (no such record or ladder, or not visible)
    and ConflictError (the ladder is not running); acknowledging twice is a
    no-op. Runs in one transaction with the record locked.
    """
    from .instance_rows import compiled, instances_of, save

    rt.authz.require(actor, entity, "update")
    rt.records.get(actor, entity, record_id)  # NotFoundError unless visible
    with rt.engine.begin() as conn:
        step = Step.open(rt, conn, entity, record_id, rt.clock())
        if step is None:
            raise NotFoundError(f"no {entity} {record_id}")
        known: set[str] = set()
        running = False
        for inst in instances_of(step):
            ladders = compiled(step, inst).escalations
            known.update(ladders)
            book = _book(inst, ladder) if ladder in ladders else None
            if book is None or inst.state.final:
                continue
            running = True
            if book.get("acked"):
                continue
            _cancel(step, inst, ladders[ladder])
            _save(inst, ladders[ladder], {**book, "acked": {
                "by": actor.user_id, "at": step.now.isoformat()}})
            save(step, inst)
            step.note(NOTE_KIND, f"escalation {ladder}: acknowledged by {actor.user_id}",
                      {"ladder": ladder, "actor": actor.user_id, "flow": inst.flow,
                       "fired": book["fired"]})
        if ladder not in known:
            raise NotFoundError(f"{entity} {record_id} has no escalation '{ladder}'",
                                hint=did_you_mean(ladder, known) or (
                                    f"escalations: {', '.join(sorted(known))}" if known
                                    else "its flows declare no escalations"))
        if not running:
            raise ConflictError(f"escalation {ladder} is not running for {entity} {record_id}",
                                hint="there is nothing to acknowledge: it runs while the "
                                     "record is stalled or its SLA clock counts")
        step.flush()


# ---------------------------------------------------------------------- ladders

def _update_stay(step: Step, inst: Instance, ladder: EscalationDef) -> None:
    book = _book(inst, ladder.name)
    if not in_stalled_state(ladder, inst.state):
        if book is not None:
            _cancel(step, inst, ladder)
            _save(inst, ladder, None)
        return
    if book is not None:
        return  # the same stay: armed already, or acknowledged
    anchor = _iso(step.now)
    _arm(step, inst, ladder, step.now, anchor, set())
    _save(inst, ladder, {"since": anchor, "anchor": anchor, "fired": [], "acked": None})


def _update_clock(step: Step, inst: Instance, ladder: EscalationDef,
                  clock: ClockState | None) -> None:
    book = _book(inst, ladder.name)
    status = None if clock is None else clock.status
    if inst.state.final or status in (None, "not_started", "stopped"):
        if book is not None:
            _cancel(step, inst, ladder)
            _save(inst, ladder, None)
        return
    if book is None:
        book = {"since": _iso(step.now), "anchor": None, "fired": [], "acked": None}
    if book.get("acked"):
        _save(inst, ladder, book)
        return
    deadline = clock_anchor(clock)
    if deadline is None:  # paused: nothing fires until it counts again
        if book["anchor"] is not None:
            _cancel(step, inst, ladder)
        _save(inst, ladder, {**book, "anchor": None})
        return
    anchor = _iso(deadline)
    if anchor != book["anchor"]:
        fired = _arm(step, inst, ladder, deadline, anchor, set(book["fired"]))
        book = {**book, "anchor": anchor, "fired": sorted(fired)}
    _save(inst, ladder, book)


def _arm(step: Step, inst: Instance, ladder: EscalationDef, anchor_at: datetime,
         anchor: str, fired: set[int]) -> set[int]:
    """Set a timer per level still to fire for ``anchor``; returns the levels still fired."""
    arm, still = plan_levels(ladder, anchor_at, fired, step.now)
    step.timers.cancel(TIMER_KIND, [_key(inst, ladder, n) for n in still])
    step.timers.set_many(TIMER_KIND, {
        _key(inst, ladder, number): (at, {"instance": inst.id, "ladder": ladder.name,
                                          "level": number, "anchor": anchor})
        for number, at in arm}, step.now, version_number=inst.version)
    return still


def _cancel(step: Step, inst: Instance, ladder: EscalationDef) -> None:
    step.timers.cancel(TIMER_KIND, [_key(inst, ladder, level.number)
                                    for level in ladder.levels])


def _key(inst: Instance, ladder: EscalationDef, number: int) -> str:
    return f"{inst.id}:{ladder.name}:{number}"


def _book(inst: Instance, name: str) -> dict[str, Any] | None:
    value = cast(Mapping[str, Any], inst.sla).get(f"ladder:{name}")
    if not isinstance(value, dict):
        return None
    return {**value, "fired": [int(n) for n in value.get("fired") or []]}


def _save(inst: Instance, ladder: EscalationDef, book: dict[str, Any] | None) -> None:
    """Replace the ladder's bookkeeping (reassigned: JSON edits in place are not saved)."""
    sla = {k: v for k, v in inst.sla.items() if k != f"ladder:{ladder.name}"}
    if book is not None:
        cast(dict[str, Any], sla)[f"ladder:{ladder.name}"] = book
    inst.sla = sla


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


__all__ = ["acknowledge", "fire_escalation_timer", "update_ladders"]
