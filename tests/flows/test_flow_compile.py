"""Compiling flows, instance-state serialisation, and misuse of the transition function."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from dispatchflow.dsl.compiler import App
from dispatchflow.errors import DispatchflowError
from dispatchflow.flows import (
    ActionTaken,
    CompiledFlow,
    EventOccurred,
    FlowError,
    InstanceState,
    apply,
    compile_flow,
    compile_flows,
    start,
)
from dispatchflow.rules import effects as fx


def test_the_reference_flow_compiles_into_an_indexed_graph(work_order_flow: CompiledFlow) -> None:
    flow = work_order_flow
    assert (flow.name, flow.entity, flow.file, flow.version, flow.initial) == (
        "work_order", "work_order", "flows/work_order.yaml", 1, "new")
    assert list(flow.states)[:3] == ["new", "triaged", "dispatching"]
    offered = flow.state("offered")
    assert offered.node == ("offered",) and offered.path == ("states", "offered")
    assert [t.action for t in offered.transitions] == ["accept", "reject", "assign"]
    assert offered.on_action["accept"][0].roles == frozenset({"technician"})
    assert list(flow.timers) == ["offered/timers/0", "completed/timers/0", "feedback/timers/0"]
    timer = flow.timers["offered/timers/0"]
    assert timer.name == "accept_timeout" and timer.target == "dispatching"
    assert timer.after is not None and timer.after.source.startswith("if work_order.priority")
    assert timer.effects == (fx.EmitEvent("work_order", "offer_expired",
                                          "flow work_order: timer accept_timeout"),)
    assert [t.trigger for t in flow.global_transitions] == [
        "action cancel", "action report_exception", "on work_order.escalated"]
    assert flow.global_on_event["work_order.escalated"][0].target == "exception"
    assert flow.status_field == "status" and "exception" in flow.status_values
    complete = flow.state("working").on_action["complete"][0]
    assert complete.form == "completion_report" and "signature" in complete.form_fields
    in_service = flow.state("in_service")
    assert [r.name for r in in_service.regions] == ["repair", "parts"]
    assert in_service.join == "completed" and flow.state("working").parent == "in_service"


def test_compile_flows_compiles_every_flow(reference_app: App) -> None:
    flows = compile_flows(reference_app, version=7)
    assert list(flows) == ["work_order"] and flows["work_order"].version == 7


def test_an_unknown_flow_is_a_flow_error(reference_app: App) -> None:
    with pytest.raises(FlowError, match="app has no flow 'work_ordr'") as info:
        compile_flow(reference_app, "work_ordr")
    assert info.value.hint == "flows: work_order"
    assert isinstance(info.value, DispatchflowError)


DUPLICATE = """\
flow: dup
entity: work_order
initial: a
states:
  a:
    regions:
      r:
        initial: a
        states:
          a: {final: true}
"""

FOREIGN_INITIAL = """\
flow: foreign
entity: work_order
initial: a
states:
  a:
    regions:
      r:
        initial: b
        states:
          c: {final: true}
    join: b
  b: {final: true}
"""


def test_a_state_name_used_twice_is_a_compile_error(compile_files: Callable[..., Any]) -> None:
    # The compiler reports it (E1020 at the second name), so no App reaches compile_flow.
    result = compile_files({"flows/dup.yaml": DUPLICATE})
    assert result.app is None
    assert [(d.code, d.file) for d in result.diagnostics if d.is_error] == [
        ("E1020", "flows/dup.yaml")]


def test_a_region_must_start_inside_itself(compile_ok: Callable[..., App]) -> None:
    app = compile_ok({"flows/foreign.yaml": FOREIGN_INITIAL})
    with pytest.raises(FlowError, match="initial state 'b' of region r is not one of"):
        compile_flow(app, "foreign")


def test_without_a_status_enum_the_flow_sets_no_status(make_flow, now: datetime) -> None:
    flow = make_flow("flow: f\nentity: work_order\ninitial: a\nstates:\n"
                     "  a: {transitions: [{on: work_order.go, to: b}]}\n  b: {final: true}\n")
    assert flow.status_field is None
    outcome = apply(flow, start(flow, {}, now).state, EventOccurred("work_order.go"), {}, now)
    assert outcome.ok and outcome.effects == []


def test_instance_state_round_trips_through_json(work_order_flow, now: datetime) -> None:
    outcome = start(work_order_flow, {"status": "new"}, now)
    for name in ("work_order.created", "work_order.dispatch_requested", "work_order.offered"):
        outcome = apply(work_order_flow, outcome.state, EventOccurred(name), {}, now)
    data = outcome.state.to_dict()
    assert data == {"flow": "work_order", "version": 1, "step": 3, "final": False,
                    "active": [["offered"]], "completed": [],
                    "timers": {"offered/timers/0": 3}}
    assert InstanceState.from_dict(json.loads(json.dumps(data))) == outcome.state


@pytest.mark.parametrize("data", [
    {},
    {"flow": "f", "version": "1", "active": [["a"]]},
    {"flow": "f", "version": 1, "active": [[]]},
    {"flow": "f", "version": 1, "active": "a"},
    {"flow": "f", "version": 1, "active": [["a"]], "timers": {"x": True}},
])
def test_malformed_instance_state_is_a_flow_error(data: dict) -> None:
    with pytest.raises(FlowError, match="malformed flow instance state"):
        InstanceState.from_dict(data)


def test_an_instance_of_another_version_is_refused(work_order_flow, now: datetime) -> None:
    state = start(work_order_flow, {}, now).state
    other = InstanceState("work_order", 2, state.active)
    with pytest.raises(FlowError, match="version 2 given to flow work_order version 1"):
        apply(work_order_flow, other, EventOccurred("work_order.created"), {}, now)
    with pytest.raises(FlowError, match="has not started"):
        apply(work_order_flow, InstanceState("work_order", 1, ()),
              EventOccurred("work_order.created"), {}, now)
    with pytest.raises(FlowError, match="has no state 'gone'"):
        apply(work_order_flow, InstanceState("work_order", 1, (("gone",),)),
              EventOccurred("work_order.created"), {}, now)


def test_now_must_be_timezone_aware(work_order_flow) -> None:
    with pytest.raises(FlowError, match="timezone-aware"):
        start(work_order_flow, {}, datetime(2026, 3, 2, 10, 0))


def test_a_non_event_is_refused(work_order_flow, now: datetime) -> None:
    state = start(work_order_flow, {}, now).state
    with pytest.raises(FlowError, match="not a flow event"):
        apply(work_order_flow, state, "work_order.created", {}, now)  # type: ignore[arg-type]


def test_roles_must_be_a_collection(work_order_flow, now: datetime) -> None:
    state = start(work_order_flow, {}, now).state
    with pytest.raises(FlowError, match="collection of role names"):
        apply(work_order_flow, state, ActionTaken("cancel", "dispatcher"), {}, now)  # type: ignore[arg-type]
