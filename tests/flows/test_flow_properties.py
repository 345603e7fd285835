"""Properties of the transition function over random event sequences (hypothesis).

- Determinism: the same start record and events give identical outcomes, also
  when the instance state goes through JSON between every two events.
- Rejections change nothing; accepted events advance ``step`` by one.
- An event or action no transition names is always rejected.
- The state stays consistent: armed timers belong to active states, ``final``
  matches the active top-level state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatchflow.flows import (
    ActionTaken,
    CompiledFlow,
    EventOccurred,
    InstanceState,
    Outcome,
    RecordChanged,
    TimerFired,
    TimerRequest,
    apply,
    start,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ROLES = ["technician", "dispatcher", "customer", "area_supervisor", "supervisor"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

records = st.fixed_dictionaries({
    "title": st.just("t"),
    "priority": st.sampled_from(["P1", "P2", "P3", "P4"]),
    "status": st.just("new"),
    "assignee": st.sampled_from([None, "T-1"]),
    "urgent": st.booleans(),
    "scheduled_at": st.sampled_from([None, T0 + timedelta(hours=3)]),
})


def instructions(flow: CompiledFlow) -> st.SearchStrategy[list[tuple]]:
    """Steps a test interprets against the instance (see :func:`run`)."""
    events = sorted({e for s in flow.states.values() for e in s.on_event} |
                    set(flow.global_on_event) | {"work_order.nothing_listens"})
    actions = sorted({a for s in flow.states.values() for a in s.on_action} |
                     set(flow.global_on_action) | {"dance"})
    timer_ids = sorted(flow.timers) + ["nowhere/timers/0"]
    move = st.tuples(st.just("move"), st.integers(0, 7))
    step = st.one_of(
        move, move, move,  # mostly moves the instance can make, so runs go deep
        st.tuples(st.just("event"), st.sampled_from(events)),
        st.tuples(st.just("action"), st.sampled_from(actions),
                  st.frozensets(st.sampled_from(ROLES), max_size=2)),
        st.tuples(st.just("fire"), st.integers(0, 3)),
        st.tuples(st.just("stale"), st.sampled_from(timer_ids), st.integers(-1, 30)),
        st.tuples(st.just("change"), st.sampled_from(["assignee", "priority"]),
                  st.sampled_from([None, "T-2", "P1", "P3"])),
    )
    return st.lists(step, max_size=30)


def moves(flow: CompiledFlow, state: InstanceState) -> list[Any]:
    """Events and actions (with a role allowed to take them) the active states declare.

    Global transitions are left to the random ``event`` / ``action`` steps, so
    that runs mostly go deep instead of ending in ``cancelled`` early.
    """
    names = [n for node in state.active for n in reversed(node[::2])]
    out: list[Any] = []
    for s in [flow.states[n] for n in dict.fromkeys(names)]:
        out.extend(EventOccurred(e) for e in s.on_event)
        out.extend(ActionTaken(a, frozenset(sorted(ts[0].roles)[:1]))
                   for a, ts in s.on_action.items())
    return out


Shell = Callable[[dict[str, Any], list[Any]], dict[str, Any]]


def run(flow: CompiledFlow, record: dict[str, Any], steps: list[tuple], record_after: Shell,
        through_json: bool = False) -> list[Outcome]:
    """Interpret ``steps`` like the shell would; every outcome, in order."""
    now = T0
    outcome = start(flow, record, now)
    outcomes = [outcome]
    state = outcome.state
    record = record_after(record, outcome.effects)
    armed: dict[str, TimerRequest] = {t.timer_id: t for t in outcome.timers_to_set}
    for step in steps:
        now += timedelta(minutes=1)
        kind = step[0]
        if kind == "move" and (options := moves(flow, state)):
            event: Any = options[step[1] % len(options)]
        elif kind == "event":
            event = EventOccurred(step[1])
        elif kind == "action":
            event = ActionTaken(step[1], step[2])
        elif kind == "fire" and armed:
            request = sorted(armed.values())[step[1] % len(armed)]
            now = max(now, request.fire_at)
            event = TimerFired(request.timer_id, request.state_step)
        elif kind == "stale":
            event = TimerFired(step[1], step[2])
        else:
            if kind == "change":
                record = {**record, step[1]: step[2]} if step[1] == "assignee" or \
                    step[2] in ("P1", "P3") else record
            event = RecordChanged()
        if through_json:
            state = InstanceState.from_dict(json.loads(json.dumps(state.to_dict())))
        outcome = apply(flow, state, event, record, now)
        check_invariants(flow, state, outcome)
        outcomes.append(outcome)
        if outcome.ok:
            state = outcome.state
            record = record_after(record, outcome.effects)
            for timer_id in outcome.timers_to_cancel:
                armed.pop(timer_id)
            armed.update((t.timer_id, t) for t in outcome.timers_to_set)
            armed = {k: v for k, v in armed.items() if k in dict(state.timers)}
    return outcomes


def check_invariants(flow: CompiledFlow, before: InstanceState, outcome: Outcome) -> None:
    after = outcome.state
    if not outcome.ok:
        assert after is before
        assert not (outcome.effects or outcome.timers_to_set or outcome.timers_to_cancel
                    or outcome.taken)
        return
    assert after.step == before.step + 1
    assert after.active and list(after.active) == sorted(
        after.active, key=lambda node: flow.states[node[-1]].order)
    assert after.final == flow.states[after.active[0][0]].final
    active = {name for node in after.active for name in node[::2]}
    assert {flow.timers[t].state for t, _ in after.timers} <= active
    assert {t.timer_id for t in outcome.timers_to_set} <= dict(after.timers).keys()
    assert all(step == after.step for t, step in after.timers
               if t in {r.timer_id for r in outcome.timers_to_set})
    assert all(r.fire_at.tzinfo is not None for r in outcome.timers_to_set)


@pytest.fixture(params=["work_order_flow", "repair_flow"])
def flow(request: pytest.FixtureRequest) -> CompiledFlow:
    """The reference flow, then the parallel one."""
    return request.getfixturevalue(request.param)


def test_the_same_events_give_the_same_outcomes(flow: CompiledFlow, shell: Shell) -> None:
    @SETTINGS
    @given(record=records, steps=instructions(flow))
    def check(record: dict[str, Any], steps: list[tuple]) -> None:
        first = run(flow, dict(record), steps, shell)
        assert run(flow, dict(record), steps, shell) == first
        assert run(flow, dict(record), steps, shell, through_json=True) == first
    check()


def test_an_event_no_transition_names_changes_nothing(flow: CompiledFlow, shell: Shell) -> None:
    @SETTINGS
    @given(record=records, steps=instructions(flow),
           stranger=st.sampled_from(["work_order.unheard_of", "unheard_of"]),
           roles=st.frozensets(st.sampled_from(ROLES)))
    def check(record: dict[str, Any], steps: list[tuple], stranger: str,
              roles: frozenset[str]) -> None:
        last = run(flow, dict(record), steps, shell)
        state = next(o.state for o in reversed(last) if o.ok)
        for event in (EventOccurred(stranger), ActionTaken("unheard_of", roles)):
            outcome = apply(flow, state, event, record, T0 + timedelta(days=9))
            assert not outcome.ok and outcome.state is state
            assert outcome.rejected_code in ("no_transition", "ended")
            assert outcome.effects == [] and outcome.timers_to_cancel == []
    check()
