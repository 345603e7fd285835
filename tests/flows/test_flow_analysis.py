"""Graph checks: unreachable states, states with no way out, final states with transitions."""

from __future__ import annotations

from collections.abc import Callable

from dispatchflow.dsl.diagnostics import CODES
from dispatchflow.flows import CompiledFlow, FlowProblem, analyse_flow
from dispatchflow.flows.analysis import reachable_states

Make = Callable[..., CompiledFlow]


def codes(flow: CompiledFlow) -> list[tuple[str, tuple]]:
    return [(p.code, p.path) for p in analyse_flow(flow)]


def test_the_reference_flow_is_clean(work_order_flow: CompiledFlow) -> None:
    assert analyse_flow(work_order_flow) == []
    assert reachable_states(work_order_flow) == set(work_order_flow.states)


def test_an_unreachable_state_is_w8001(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {transitions: [{on: work_order.go, to: done}]}
  orphan: {transitions: [{on: work_order.go, to: done}]}
  done: {final: true}
""")
    (problem,) = analyse_flow(flow)
    assert problem == FlowProblem("W8001", "state 'orphan' can never be reached from 'a'",
                                  "flows/under_test.yaml", ("states", "orphan"),
                                  "add a transition to it, or remove it")
    assert not problem.is_error


def test_a_stuck_state_is_e8002(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {transitions: [{on: work_order.go, to: limbo}]}
  limbo:
    timers: [{after: 1h, emit: still_here}]
    transitions: [{on: work_order.again, to: limbo}]
""")
    (problem,) = analyse_flow(flow)
    assert problem.code == "E8002" and problem.is_error
    assert problem.path == ("states", "limbo")
    assert problem.message == "state 'limbo' is not final but nothing leads out of it"


def test_a_global_transition_or_a_timer_is_a_way_out(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {transitions: [{on: work_order.go, to: b}]}
  b: {}
  c:
    timers: [{after: 1d, to: a}]
  done: {final: true}
global_transitions:
  - {on: work_order.jump, to: c}
  - {on: work_order.stop, to: done}
""")
    assert codes(flow) == []


def test_a_global_transition_to_the_state_itself_is_no_way_out(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {}
global_transitions:
  - {on: work_order.again, to: a}
""")
    assert codes(flow) == [("E8002", ("states", "a"))]


def test_a_final_state_with_transitions_is_w8003(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {transitions: [{on: work_order.go, to: done}]}
  done:
    final: true
    transitions: [{on: work_order.reopen, to: a}]
  ended:
    final: true
    timers: [{after: 1d, emit: archived}]
""")
    problems = analyse_flow(flow)
    assert [(p.code, p.path) for p in problems] == [
        ("W8003", ("states", "done", "transitions")),
        ("W8001", ("states", "ended")),
        ("W8003", ("states", "ended", "timers"))]
    assert problems[0].message == "final state 'done' has transitions; they are never taken"


def test_regions_joins_and_region_exits_count(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a: {transitions: [{on: work_order.go, to: p}]}
  p:
    regions:
      one:
        initial: x
        states:
          x: {transitions: [{on: work_order.x, to: x_done}]}
          x_done: {final: true}
          x_spare: {final: true}
      two:
        initial: y
        states:
          y: {transitions: [{on: work_order.y, to: after}]}
    join: after
  after: {final: true}
""")
    # y leaves the parallel state; x_spare is never entered
    assert codes(flow) == [("W8004", ("states", "p", "regions", "two")),
                           ("W8001", ("states", "p", "regions", "one", "states", "x_spare"))]


def test_a_region_state_is_stuck_only_if_its_parallel_state_is(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: p
states:
  p:
    regions:
      one:
        initial: x
        states:
          x: {}
      two:
        initial: y
        states:
          y: {final: true}
""")
    assert codes(flow) == [("E8002", ("states", "p")),
                           ("E8002", ("states", "p", "regions", "one", "states", "x"))]


def test_states_reached_only_by_a_timer_join_or_global_are_reachable(make_flow: Make) -> None:
    flow = make_flow("""\
flow: f
entity: work_order
initial: a
states:
  a:
    timers: [{after: 1h, to: p}]
  p:
    regions:
      r:
        initial: inner
        states:
          inner: {final: true}
    join: joined
  joined: {transitions: [{on: work_order.x, to: a}]}
  side: {final: true}
global_transitions:
  - {action: give_up, roles: [dispatcher], to: side}
""")
    assert codes(flow) == []


def test_every_code_has_a_title() -> None:
    assert {"W8001", "E8002", "W8003", "W8004", "E8005"} <= set(CODES)
