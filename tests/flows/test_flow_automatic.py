"""Automatic ``when`` transitions, record changes, and error outcomes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from dispatchflow.flows import CompiledFlow, EventOccurred, RecordChanged, apply, start
from dispatchflow.flows.transition import MAX_MICROSTEPS
from dispatchflow.rules import effects as fx

TRIAGE = """\
flow: triage
entity: work_order
initial: new
states:
  new:
    transitions:
      - when: work_order.priority == "P1"
        to: urgent
      - {on: work_order.created, to: normal}
  urgent:
    on_enter:
      - set: {escalated: "true"}
    transitions:
      - {when: work_order.escalated, guard: work_order.parts_count == 0, to: escalated_now}
  escalated_now:
    timers:
      - {name: follow_up, after: work_order.estimated_duration, to: normal}
      - {name: visit, at: work_order.scheduled_at - 1h, emit: visit_soon}
    transitions:
      - {on: work_order.created, to: normal}
  normal:
    transitions:
      - {on: work_order.bad, guard: work_order.parts_count > 2, to: done}
  done: {final: true}
global_transitions:
  - when: work_order.budget > 1000
    to: done
"""

LOOP = """\
flow: loop
entity: work_order
initial: ping
states:
  ping:
    transitions: [{when: "true", to: pong}]
  pong:
    transitions: [{when: "true", to: ping}]
"""


@pytest.fixture
def triage(make_flow: Callable[..., CompiledFlow]) -> CompiledFlow:
    return make_flow(TRIAGE)


def test_when_transitions_chain_until_quiet(triage: CompiledFlow, now: datetime) -> None:
    outcome = start(triage, {"priority": "P1", "parts_count": 0, "escalated": False}, now)
    assert outcome.state.states == ("escalated_now",) and outcome.state.step == 0
    assert [(t.source, t.target, t.trigger) for t in outcome.taken] == [
        (None, "new", "start"), ("new", "urgent", "when"), ("urgent", "escalated_now", "when")]
    # the set on entering 'urgent' is what the next 'when' saw
    assert outcome.effects == [
        fx.SetField("work_order", "escalated", True, "flow triage: enter urgent")]
    assert outcome.timers_to_set == []  # null duration and null date-time arm nothing


def test_a_guard_holds_back_an_automatic_transition(triage: CompiledFlow,
                                                    now: datetime) -> None:
    outcome = start(triage, {"priority": "P1", "parts_count": 2, "escalated": False}, now)
    assert outcome.state.states == ("urgent",)


def test_a_record_change_re_evaluates_when(triage: CompiledFlow, drive) -> None:
    d = drive(triage, {"priority": "P3", "parts_count": 0, "escalated": False})
    assert d.states == ("new",)
    outcome = d.send(RecordChanged())
    assert outcome.rejected_code == "no_transition" and outcome.state.step == 0
    d.record["priority"] = "P1"
    d.record["estimated_duration"] = timedelta(minutes=90)
    d.record["scheduled_at"] = d.now + timedelta(hours=5)
    outcome = d.send(RecordChanged())
    assert d.states == ("escalated_now",) and d.state.step == 1
    assert [(t.timer_id, t.fire_at - d.now, t.state_step) for t in outcome.timers_to_set] == [
        ("escalated_now/timers/0", timedelta(minutes=90), 1),
        ("escalated_now/timers/1", timedelta(hours=4), 1)]


def test_a_global_when_applies_from_any_state(triage: CompiledFlow, drive) -> None:
    d = drive(triage, {"priority": "P3", "parts_count": 0, "budget": 10})
    d.send("work_order.created")
    d.record["budget"] = 5000
    outcome = d.send(RecordChanged())
    assert d.states == ("done",) and d.state.final
    assert outcome.taken[0].path == ("global_transitions", 0)


def test_an_event_is_followed_by_automatic_steps(triage: CompiledFlow, drive) -> None:
    d = drive(triage, {"priority": "P3", "parts_count": 0, "budget": 2000})
    assert d.states == ("done",)  # the global when held at start already


def test_when_transitions_that_never_settle_are_an_error(make_flow, now: datetime) -> None:
    flow = make_flow(LOOP)
    outcome = start(flow, {}, now)
    assert outcome.error is not None and not outcome.ok
    assert f"more than {MAX_MICROSTEPS} transitions" in outcome.error
    assert outcome.state.active == () and outcome.effects == []


def test_an_expression_failing_on_the_record_is_an_error_outcome(triage: CompiledFlow,
                                                                 drive) -> None:
    d = drive(triage, {"priority": "P3", "parts_count": 0})
    d.send("work_order.created")
    before = d.state
    d.record["parts_count"] = "many"  # not what the schema allows
    outcome = apply(triage, before, EventOccurred("work_order.bad"), d.record, d.now)
    assert outcome.state is before and outcome.effects == []
    assert outcome.error is not None
    assert outcome.error.startswith("flows/under_test.yaml:")
    assert "states.normal.transitions.0.guard `work_order.parts_count > 2` failed" \
        in outcome.error
