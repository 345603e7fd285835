"""Escalation ladders, pure side: compiling ``escalations:`` and when levels fire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dispatchflow.flows import CompiledFlow, InstanceState
from dispatchflow.flows.escalation import (
    clock_anchor,
    in_stalled_state,
    ladder_times,
    plan_levels,
)
from dispatchflow.flows.model import EscalationDef, EscalationLevel
from dispatchflow.flows.sla import ClockState

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

NOTIFY = """\
notification: supervisor_alert
entity: work_order
channels: [inbox]
to:
  - role: supervisor
body: 已升级
"""

FLOW = """\
flow: repair
entity: work_order
initial: new
states:
  new:
    transitions:
      - {to: offered, on: work_order.offered}
  offered:
    transitions:
      - {to: both, on: work_order.accepted}
  both:
    regions:
      work:
        initial: working
        states:
          working:
            transitions:
              - {to: fixed, on: work_order.fixed}
          fixed: {final: true}
    join: done
  done: {final: true}
sla_clocks:
  resolution:
    start_on: work_order.created
    stop_on: [work_order.fixed]
    target: 4h
escalations:
  offer_unanswered:
    label: {zh: 接单超时升级, en: Offer not accepted}
    while_in: [offered, working]
    levels:
      - after: 15m
        notify: supervisor_alert
      - after: 30m
        notify: supervisor_alert
        emit: work_order.stalled
  at_risk:
    clock: resolution
    levels:
      - {before: 2h, notify: supervisor_alert}
      - {after: 0m, emit: late}
      - {after: 1.5h, notify: supervisor_alert}
"""


@pytest.fixture
def flow(make_flow: Callable[..., CompiledFlow]) -> CompiledFlow:
    return make_flow(FLOW, {"notifications/supervisor_alert.yaml": NOTIFY})


def test_compiled_ladders(flow: CompiledFlow) -> None:
    stalled = flow.escalations["offer_unanswered"]
    assert stalled.while_in == {"offered", "working"} and stalled.clock is None
    assert stalled.label == {"zh": "接单超时升级", "en": "Offer not accepted"}
    assert stalled.levels == (
        EscalationLevel(1, timedelta(minutes=15), "supervisor_alert", None,
                        ("escalations", "offer_unanswered", "levels", 0)),
        EscalationLevel(2, timedelta(minutes=30), "supervisor_alert", "stalled",
                        ("escalations", "offer_unanswered", "levels", 1)))
    risk = flow.escalations["at_risk"]
    assert risk.clock == "resolution" and risk.while_in == frozenset()
    assert [(lv.number, lv.offset, lv.notify, lv.emit) for lv in risk.levels] == [
        (1, -timedelta(hours=2), "supervisor_alert", None), (2, timedelta(0), None, "late"),
        (3, timedelta(hours=1.5), "supervisor_alert", None)]


def test_a_flow_without_escalations_has_none(make_flow: Callable[..., CompiledFlow]) -> None:
    plain = make_flow("flow: f\nentity: work_order\ninitial: a\nstates: {a: {final: true}}\n")
    assert plain.escalations == {}


def test_ladder_times_count_from_the_anchor(flow: CompiledFlow) -> None:
    assert ladder_times(flow.escalations["offer_unanswered"], T0) == [
        (0, T0 + timedelta(minutes=15)), (1, T0 + timedelta(minutes=30))]
    deadline = T0 + timedelta(hours=4)
    assert ladder_times(flow.escalations["at_risk"], deadline) == [
        (0, T0 + timedelta(hours=2)), (1, deadline), (2, deadline + timedelta(hours=1.5))]


def test_ladder_times_needs_an_aware_anchor(flow: CompiledFlow) -> None:
    with pytest.raises(ValueError, match="aware"):
        ladder_times(flow.escalations["at_risk"], datetime(2026, 3, 2, 10, 0))


def test_stalled_states_include_regions_and_end_with_the_flow(flow: CompiledFlow) -> None:
    ladder = flow.escalations["offer_unanswered"]

    def state(*active: tuple[str, ...], final: bool = False) -> InstanceState:
        return InstanceState("repair", 1, active, final=final)

    assert in_stalled_state(ladder, state(("offered",)))
    assert in_stalled_state(ladder, state(("both", "work", "working")))
    assert not in_stalled_state(ladder, state(("new",)))
    assert not in_stalled_state(ladder, state(("offered",), final=True))
    assert not in_stalled_state(flow.escalations["at_risk"], state(("offered",)))


@pytest.mark.parametrize(("status", "paused", "anchored"), [
    ("running", False, True), ("breached", False, True), ("breached", True, False),
    ("paused", True, False), ("stopped", False, False), ("not_started", False, False)])
def test_a_clock_ladder_counts_while_its_clock_counts(status: str, paused: bool,
                                                      anchored: bool) -> None:
    deadline = T0 + timedelta(hours=4)
    clock = ClockState("resolution", status,  # type: ignore[arg-type]
                       deadline=deadline, paused_since=T0 if paused else None)
    assert clock_anchor(clock) == (deadline if anchored else None)


def test_no_clock_or_no_deadline_means_no_anchor() -> None:
    assert clock_anchor(None) is None
    assert clock_anchor(ClockState("resolution", "running")) is None


def test_plan_arms_every_level_of_a_new_ladder(flow: CompiledFlow) -> None:
    arm, fired = plan_levels(flow.escalations["offer_unanswered"], T0, (), T0)
    assert arm == [(1, T0 + timedelta(minutes=15)), (2, T0 + timedelta(minutes=30))]
    assert fired == set()


def test_plan_fires_passed_levels_at_once(flow: CompiledFlow) -> None:
    # A P1 deadline only 1h away: "2h before" has passed already.
    deadline = T0 + timedelta(hours=1)
    arm, _ = plan_levels(flow.escalations["at_risk"], deadline, (), T0)
    assert arm == [(1, T0), (2, deadline), (3, deadline + timedelta(hours=1.5))]


def test_plan_keeps_a_fired_level_when_the_deadline_moves_earlier(flow: CompiledFlow) -> None:
    now = T0 + timedelta(hours=2, minutes=10)  # level 1 fired at T0 + 2h
    earlier = T0 + timedelta(hours=3)
    arm, fired = plan_levels(flow.escalations["at_risk"], earlier, {1}, now)
    assert fired == {1}
    assert arm == [(2, earlier), (3, earlier + timedelta(hours=1.5))]


def test_plan_re_arms_a_fired_level_when_the_deadline_moves_later(flow: CompiledFlow) -> None:
    now = T0 + timedelta(hours=2, minutes=10)
    later = T0 + timedelta(hours=8)
    arm, fired = plan_levels(flow.escalations["at_risk"], later, {1}, now)
    assert fired == set()
    assert arm[0] == (1, T0 + timedelta(hours=6))


def test_levels_are_plain_dataclasses() -> None:
    ladder = EscalationDef("x", ("escalations", "x"), {}, frozenset({"a"}), None, (
        EscalationLevel(1, timedelta(minutes=5), None, "poke", ("escalations", "x", "levels", 0)),))
    assert ladder_times(ladder, T0) == [(0, T0 + timedelta(minutes=5))]
