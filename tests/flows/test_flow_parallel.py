"""Parallel regions with a join: the ``repair`` flow of conftest.py (repair and parts side by side)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from dispatchflow.flows import CompiledFlow, EventOccurred, InstanceState, apply
from dispatchflow.rules import effects as fx

P = "repair_and_parts"
RULE = "flow repair"


@pytest.fixture
def started(repair_flow: CompiledFlow, drive: Callable) -> object:
    d = drive(repair_flow, {"title": "x", "priority": "P2"})
    outcome = d.send("work_order.started")
    assert outcome.ok
    return d


def test_entering_a_parallel_state_enters_every_region(repair_flow, drive) -> None:
    d = drive(repair_flow, {"title": "x"})
    outcome = d.send("work_order.started")
    assert outcome.state.active == ((P, "repair", "diagnosing"), (P, "parts", "requesting"))
    assert outcome.state.states == ("diagnosing", "requesting")
    assert outcome.state.is_in(P) and outcome.state.is_in("diagnosing")
    assert not outcome.state.is_in("repair")  # a region, not a state
    assert outcome.effects == [fx.AddTag("work_order", "in_parallel", f"{RULE}: enter {P}")]


def test_an_event_is_offered_to_every_region(started) -> None:
    outcome = started.send("work_order.fast_track")
    assert started.states == ("working", "waiting_parts")
    assert [(t.source, t.target) for t in outcome.taken] == [
        ("diagnosing", "working"), ("requesting", "waiting_parts")]
    assert outcome.effects == [
        fx.EmitEvent("work_order", "diagnosed", f"{RULE}: exit diagnosing")]
    assert [t.timer_id for t in outcome.timers_to_set] == ["working/timers/0"]


def test_regions_join_when_every_one_is_final(started, now: datetime) -> None:
    started.act("diagnose", "dispatcher")
    outcome = started.send("work_order.repaired")
    assert outcome.state.completed == ((P, "repair"),)
    assert started.states == ("repaired", "requesting")
    assert outcome.timers_to_cancel == ["working/timers/0"]

    # the completed region takes no more events; the other region still does
    assert started.send("work_order.fast_track").taken[0].source == "requesting"
    outcome = started.send("work_order.parts_arrived")
    assert started.states == ("acceptance",)
    assert outcome.state.completed == () and not outcome.state.final
    assert [(t.source, t.target, t.trigger) for t in outcome.taken] == [
        ("waiting_parts", "parts_done", "on work_order.parts_arrived"),
        (P, "acceptance", "join")]
    assert outcome.effects == [fx.RemoveTag("work_order", "in_parallel", f"{RULE}: exit {P}")]
    assert started.act("accept", "supervisor").state.final


def test_either_final_state_of_a_region_completes_it(started) -> None:
    started.send("work_order.parts_refused")
    started.send("work_order.fast_track")  # only the repair region still listens
    assert started.states == ("working", "no_parts")
    started.send("work_order.repaired")
    assert started.states == ("acceptance",)


def test_a_global_transition_leaves_all_regions_innermost_first(started) -> None:
    started.send("work_order.fast_track")
    outcome = started.act("cancel", "dispatcher")
    assert started.states == ("cancelled",) and started.state.final
    assert outcome.timers_to_cancel == ["working/timers/0"]
    assert outcome.effects == [fx.RemoveTag("work_order", "in_parallel", f"{RULE}: exit {P}")]
    assert outcome.taken[0].source == P


def test_a_transition_of_the_parallel_state_applies_from_any_region(started) -> None:
    assert started.send("work_order.repaired").rejected_code == "no_transition"
    outcome = started.send("work_order.customer_gone")
    assert outcome.ok and started.states == ("open",)
    assert [(t.source, t.target) for t in outcome.taken] == [(P, "open")]


def test_a_transition_into_a_region_enters_the_others_at_their_start(repair_flow,
                                                                     drive) -> None:
    d = drive(repair_flow, {"title": "x"})
    outcome = d.send("work_order.parts_preordered")
    assert outcome.state.active == ((P, "repair", "diagnosing"), (P, "parts", "waiting_parts"))
    assert outcome.effects == [fx.AddTag("work_order", "in_parallel", f"{RULE}: enter {P}")]


def test_a_region_timer_fires_without_leaving_its_state(started, now: datetime) -> None:
    started.act("diagnose", "dispatcher")
    outcome = started.fire("working/timers/0")
    assert outcome.ok and started.states == ("working", "requesting")
    assert outcome.effects == [fx.EmitEvent("work_order", "repair_slow", f"{RULE}: timer nudge")]
    assert started.state.timers == () and started.now == now + timedelta(hours=2)
    assert outcome.taken[0].target is None


def test_a_parallel_instance_state_survives_json(started, repair_flow) -> None:
    started.act("diagnose", "dispatcher")
    started.send("work_order.parts_refused")
    text = json.dumps(started.state.to_dict())
    back = InstanceState.from_dict(json.loads(text))
    assert back == started.state
    assert back.completed == ((P, "parts"),)
    a = apply(repair_flow, back, EventOccurred("work_order.repaired"), started.record, started.now)
    b = apply(repair_flow, started.state, EventOccurred("work_order.repaired"), started.record,
              started.now)
    assert a == b and a.state.states == ("acceptance",)


def test_conflicting_transitions_the_first_region_wins(started) -> None:
    # diagnosing leaves the whole parallel state; requesting's own move would
    # exit a state already left, so it is dropped
    outcome = started.send("work_order.abort")
    assert started.states == ("open",)
    assert [(t.source, t.target) for t in outcome.taken] == [("diagnosing", "open")]
    assert outcome.effects == [
        fx.EmitEvent("work_order", "diagnosed", f"{RULE}: exit diagnosing"),
        fx.RemoveTag("work_order", "in_parallel", f"{RULE}: exit {P}")]
