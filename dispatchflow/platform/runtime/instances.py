"""Durable flow instances: the pure transition function applied to stored instances.

An instance row (``df_flow_instances``) holds one record's place in one flow
(:class:`~dispatchflow.flows.InstanceState` as JSON), the app version it
started on, and the history its SLA clocks are computed from. Every call here
runs inside a :class:`~.step.Step`, whose transaction holds the record's row
lock, so one instance is never changed by two workers at once.

Instances are pinned: an instance is always run by the compiled flow of its own
version, so publishing a new version never changes running instances; new
instances start on the active version. Every flow of an entity starts when a
record of it is created (``<entity>.created``); a ``start flow`` effect starts
one on an existing record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...flows import (
    ActionOption,
    ActionTaken,
    CompiledFlow,
    Event,
    EventOccurred,
    InstanceState,
    Outcome,
    RecordChanged,
    TimerFired,
    actions_available,
    apply,
    start,
)
from ..store.db import flow_instances
from .escalation import update_ladders
from .instance_rows import Instance, compiled, instances_of, save
from .sla_clocks import update_clocks
from .step import Step


def start_flows(step: Step, names: list[str] | None, by: str) -> None:
    """Start flows of the record's entity (all when ``names`` is None) not yet started."""
    version = step.rt.flows_of(step.rt.version_number)
    existing = {i.flow for i in instances_of(step)}
    for flow in version.flows.values():
        if flow.entity != step.entity or flow.name in existing:
            continue
        if names is not None and flow.name not in names:
            continue
        outcome = start(flow, step.record, step.now)
        if not outcome.ok:
            step.note("error", f"flow {flow.name} could not start: {outcome.error}",
                      {"flow": flow.name})
            continue
        result = step.conn.execute(flow_instances.insert().values(
            flow=flow.name, entity=step.entity, record_id=step.record_id,
            version_number=version.number, state=outcome.state.to_dict(), history=[],
            sla={}, ended=outcome.state.final, created_at=step.utc, updated_at=step.utc))
        assert result.inserted_primary_key is not None
        inst = Instance(int(result.inserted_primary_key[0]), flow.name, version.number,
                        outcome.state, [], {})
        step.facts.memo[("instances", step.entity, step.record_id)].append(inst)
        step.note("flow", f"flow {flow.name} started ({by})",
                  {"flow": flow.name, "version": version.number})
        _settle(step, inst, flow, outcome, None)


def feed_event(step: Step, event_name: str) -> None:
    """Offer ``entity.event`` to every running instance of the record."""
    for inst in instances_of(step):
        if inst.state.final:
            continue
        flow = compiled(step, inst)
        outcome = apply(flow, inst.state, EventOccurred(event_name), step.record, step.now)
        if outcome.rejected_code == "no_transition" and flow.automatic:
            outcome = apply(flow, inst.state, RecordChanged(), step.record, step.now)
        if outcome.ok:
            _settle(step, inst, flow, outcome, event_name)
        elif outcome.error:
            step.note("error", f"flow {inst.flow}: {outcome.error}",
                      {"flow": inst.flow, "event": event_name})
        elif any(event_name == c.definition.start_on or event_name in c.definition.stop_on
                 for c in flow.sla_clocks.values()) or _targets_moved(step, inst, flow):
            # No transition, but an SLA clock starts or stops, or its target changed
            # (a priority change): record it so deadlines and ladders follow.
            _settle(step, inst, flow, Outcome(inst.state), event_name)


def action_options(step: Step, roles: frozenset[str], flow: str | None = None
                   ) -> list[tuple[str, ActionOption]]:
    """The actions the record's instances offer ``roles`` now (role and guard), with
    each instance's flow name: what the API lists, before row rules and offers."""
    return [(inst.flow, option) for inst in instances_of(step, flow)
            for option in actions_available(compiled(step, inst), inst.state, roles,
                                            step.record, step.now)]


def action_option(step: Step, flow: str | None, action: str, roles: frozenset[str]
                  ) -> ActionOption | None:
    """The option :func:`action_options` has for ``action`` (None when not offered now)."""
    return next((o for _, o in action_options(step, roles, flow) if o.action == action), None)


def take_action(step: Step, flow_name: str | None, action: str, roles: frozenset[str],
                form_values: Mapping[str, Any] | None) -> Outcome:
    """Apply an action to the record's instance that offers it; the outcome either way."""
    last: Outcome | None = None
    for inst in instances_of(step, flow_name):
        flow = compiled(step, inst)
        outcome = apply(flow, inst.state,
                        ActionTaken(action, roles, dict(form_values) if form_values else None),
                        step.record, step.now)
        if outcome.ok:
            _settle(step, inst, flow, outcome, f"{step.entity}.action.{action}")
            return outcome
        if last is None or last.rejected_code in (None, "no_transition", "ended"):
            last = outcome
    return last or Outcome(InstanceState("", 0, ()), rejected="the record has no flow",
                           rejected_code="no_transition")


def fire_timer(step: Step, payload: Mapping[str, Any]) -> None:
    """A flow timer came due: feed it to its instance (stale timers are ignored)."""
    for inst in instances_of(step):
        if inst.id != payload.get("instance"):
            continue
        flow = compiled(step, inst)
        outcome = apply(flow, inst.state,
                        TimerFired(str(payload["timer_id"]), int(payload["step"])),
                        step.record, step.now)
        if outcome.ok:
            _settle(step, inst, flow, outcome, None, timer=str(payload["timer_id"]))
        elif outcome.error:
            step.note("error", f"flow {inst.flow}: {outcome.error}", {"flow": inst.flow})


def _settle(step: Step, inst: Instance, flow: CompiledFlow, outcome: Outcome,
            event_name: str | None, timer: str | None = None) -> None:
    """Apply an accepted outcome: effects, timers, timeline, SLA clocks, stored state."""
    step.apply(outcome.effects)
    # The transition function cancels a re-entered state's timer before setting it again.
    step.timers.cancel("flow", [f"{inst.id}:{t}" for t in outcome.timers_to_cancel])
    if outcome.timers_to_set:
        step.timers.insert("flow", [
            (f"{inst.id}:{req.timer_id}", req.fire_at,
             {"instance": inst.id, "timer_id": req.timer_id, "step": req.state_step})
            for req in outcome.timers_to_set], step.now, version_number=inst.version)
    entered = [t.target for t in outcome.taken if t.target is not None]
    for taken in outcome.taken:
        if taken.trigger == "start":
            continue
        arrow = f"{taken.source or '*'} → {taken.target or taken.source or '*'}"
        step.note("flow", f"{inst.flow}: {arrow} ({taken.trigger})",
                  {"flow": inst.flow, "source": taken.source, "target": taken.target,
                   "trigger": taken.trigger, "timer": timer})
    if event_name is not None or entered:
        entry: dict[str, Any] = {"at": step.now.isoformat(), "event": event_name,
                                 "entered": entered}
        targets = _targets(flow, step)
        if targets:
            entry["targets"] = {k: v.total_seconds() for k, v in targets.items()}
        inst.history.append(entry)
    inst.state = outcome.state
    clocks = update_clocks(step, inst.id, inst.version, flow, inst.history, inst.sla)
    update_ladders(step, inst, flow, clocks)
    save(step, inst)


def _targets_moved(step: Step, inst: Instance, flow: CompiledFlow) -> bool:
    """Whether an SLA clock's target now differs from the last one recorded."""
    if not flow.sla_clocks:
        return False
    last: dict[str, float] = {}
    for entry in inst.history:
        last.update(entry.get("targets") or {})
    now = {k: v.total_seconds() for k, v in _targets(flow, step).items()}
    return any(last.get(k) != v for k, v in now.items())


def _targets(flow: CompiledFlow, step: Step) -> dict[str, Any]:
    out = {}
    for name, clock in flow.sla_clocks.items():
        if clock.target is None:
            continue
        try:
            value = clock.target.fn(step.record, step.now)
        except Exception as exc:  # a record the target expression cannot read
            step.note("error", f"SLA clock {name}: target failed: {exc}", {"clock": name})
            continue
        if value is not None:
            out[name] = value
    return out


__all__ = ["Event", "Instance", "feed_event", "fire_timer", "instances_of", "start_flows",
           "take_action"]
