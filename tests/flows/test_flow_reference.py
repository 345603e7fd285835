"""The reference work-order flow (examples/field-service/flows/work_order.yaml), end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from dispatchflow.flows import (
    ActionOption,
    ActionTaken,
    CompiledFlow,
    EventOccurred,
    TimerFired,
    actions_available,
    apply,
)
from dispatchflow.rules import effects as fx

RULE = "flow work_order"
RECORD = {"title": "卫生间水管爆裂漏水", "priority": "P3", "status": "new", "assignee": None,
          "urgent": False, "scheduled_at": None}

# Events that bring a fresh instance into each state (technician actions by a technician).
PATHS: dict[str, list] = {
    "new": [],
    "triaged": ["work_order.created"],
    "dispatching": ["work_order.created", "work_order.dispatch_requested"],
    "offered": ["work_order.created", "work_order.dispatch_requested", "work_order.offered"],
}
PATHS["accepted"] = PATHS["offered"] + [("accept", "technician")]
PATHS["en_route"] = PATHS["accepted"] + [("depart", "technician")]
PATHS["on_site"] = PATHS["en_route"] + [("arrive", "technician")]
PATHS["in_service"] = PATHS["on_site"] + [("start_service", "technician")]
PATHS["completed"] = PATHS["in_service"] + [("complete", "technician"),
                                            "work_order.repair_done"]
PATHS["feedback"] = PATHS["completed"] + [("confirm_completion", "customer")]
PATHS["closed"] = PATHS["feedback"] + ["work_order.feedback_received"]
PATHS["exception"] = PATHS["dispatching"] + ["work_order.escalated"]
PATHS["cancelled"] = PATHS["triaged"] + [("cancel", "dispatcher")]

# Active leaf states where they are not just the state itself (in_service is parallel).
LEAVES = {"in_service": ("working", "no_parts")}


@pytest.fixture
def order(work_order_flow: CompiledFlow, drive: Callable) -> Callable:
    """``order(state, **fields)``: a driver whose instance has reached ``state``."""
    def make(state: str = "new", **fields) -> object:
        driver = drive(work_order_flow, {**RECORD, **fields})
        for step in PATHS[state]:
            outcome = driver.send(step) if isinstance(step, str) else driver.act(*step)
            assert outcome.ok, outcome
        assert driver.states == LEAVES.get(state, (state,))
        return driver
    return make


def test_the_whole_lifecycle_moves_by_events_and_the_right_roles(order, now: datetime) -> None:
    d = order("new")
    assert d.record["status"] == "new"
    for event, state in [("work_order.created", "triaged"),
                         ("work_order.dispatch_requested", "dispatching"),
                         ("work_order.offered", "offered")]:
        outcome = d.send(event)
        assert d.states == (state,)
        assert outcome.effects == [fx.SetField("work_order", "status", state,
                                               f"{RULE}: enter {state}")]
    assert list(d.timers) == ["offered/timers/0"]

    outcome = d.act("accept", "technician")
    assert d.states == ("accepted",)
    assert outcome.effects == [
        fx.SetField("work_order", "status", "accepted", f"{RULE}: enter accepted"),
        fx.SetField("work_order", "accepted_at", now, f"{RULE}: enter accepted"),
        fx.EmitEvent("work_order", "accepted", f"{RULE}: enter accepted"),
        fx.Notify("customer_status_update", f"{RULE}: enter accepted"),
    ]
    assert outcome.timers_to_cancel == ["offered/timers/0"] and not outcome.timers_to_set

    d.act("depart", "technician")
    outcome = d.act("arrive", "technician")
    assert fx.EmitEvent("work_order", "arrived",
                        f"{RULE}: en_route -> on_site (action arrive)") in outcome.effects
    d.act("start_service", "technician")

    d.record["urgent"] = True  # the surcharges table adds 50 for urgent service
    outcome = d.act("complete", "technician", resolution="换了阀门", customer_absent=False)
    assert d.states == ("repaired", "no_parts")  # the parts branch is still open
    assert outcome.effects == [
        fx.SetField("work_order", "resolution", "换了阀门", f"{RULE}: form completion_report"),
        fx.SetField("work_order", "customer_absent", False, f"{RULE}: form completion_report"),
        fx.EmitEvent("work_order", "repair_done",
                     f"{RULE}: working -> repaired (action complete)"),
    ]
    outcome = d.send("work_order.repair_done")  # no parts requested: both branches end
    assert d.states == ("completed",)
    via = f"{RULE}: enter completed"
    assert outcome.effects == [
        fx.SetField("work_order", "status", "completed", via),
        fx.SetField("work_order", "completed_at", now, via),
        fx.SetField("work_order", "cost_surcharge", 50, via),
        fx.EmitEvent("work_order", "completed", via),
        fx.Notify("customer_status_update", via),
    ]
    assert outcome.timers_to_set[0].timer_id == "completed/timers/0"
    assert outcome.timers_to_set[0].fire_at == now + timedelta(days=1)

    outcome = d.act("confirm_completion", "customer")
    assert d.states == ("feedback",)
    assert outcome.timers_to_cancel == ["completed/timers/0"]
    assert [t.timer_id for t in outcome.timers_to_set] == ["feedback/timers/0"]

    outcome = d.send("work_order.feedback_received")
    assert d.states == ("closed",) and outcome.state.final
    assert outcome.timers_to_cancel == ["feedback/timers/0"] and not d.timers
    assert d.state.step == 11  # one step per accepted event
    assert d.record["status"] == "closed"

    again = d.send("work_order.feedback_received")
    assert again.rejected_code == "ended" and again.state is d.state


def test_a_wrong_role_is_rejected_and_changes_nothing(order) -> None:
    d = order("offered")
    before = d.state
    outcome = d.act("accept", "dispatcher", "customer")
    assert outcome.rejected_code == "forbidden"
    assert outcome.rejected == ("role customer, dispatcher may not take action 'accept' "
                                "(allowed: technician)")
    assert outcome.state is before and outcome.effects == [] and outcome.timers_to_set == []
    assert d.act("accept").rejected_code == "forbidden"  # no roles at all


def test_an_action_the_state_does_not_offer_is_rejected(order) -> None:
    d = order("offered")
    outcome = d.act("depart", "technician")
    assert outcome.rejected_code == "no_transition"
    assert outcome.rejected == "no action 'depart' in state offered"
    outcome = d.send("work_order.feedback_received")
    assert outcome.rejected == "no transition on work_order.feedback_received in state offered"


@pytest.mark.parametrize("state", ["triaged", "dispatching", "exception"])
def test_assign_by_hand_needs_an_assignee(order, state: str) -> None:
    d = order(state)
    outcome = d.act("assign", "dispatcher")
    assert outcome.rejected_code == "guard"
    assert outcome.rejected == ("action 'assign' is not possible now: its guard "
                                "`work_order.assignee is not null` is false")
    d.record["assignee"] = "T-0007"
    assert d.act("assign", "area_supervisor").ok
    assert d.states == ("accepted",)


@pytest.mark.parametrize("priority, minutes", [("P1", 5), ("P2", 15), ("P3", 15), ("P4", 15)])
def test_the_accept_window_adapts_to_the_priority(order, now: datetime, priority: str,
                                                   minutes: int) -> None:
    d = order("dispatching", priority=priority)
    outcome = d.send("work_order.offered")
    (request,) = outcome.timers_to_set
    assert request.timer_id == "offered/timers/0"
    assert request.fire_at == now + timedelta(minutes=minutes)
    assert request.fire_at.tzinfo is not None
    assert request.state_step == d.state.step == 3


def test_an_unanswered_offer_expires_back_to_dispatching(order, now: datetime) -> None:
    d = order("offered", priority="P1")
    outcome = d.fire("offered/timers/0")
    assert d.states == ("dispatching",)
    assert outcome.effects == [
        fx.EmitEvent("work_order", "offer_expired", f"{RULE}: timer accept_timeout"),
        fx.SetField("work_order", "status", "dispatching", f"{RULE}: enter dispatching"),
    ]
    assert outcome.timers_to_cancel == [] and outcome.timers_to_set == []
    assert outcome.taken[0].trigger == "timer accept_timeout"
    assert d.now == now + timedelta(minutes=5)


def test_a_stale_timer_is_ignored(order, work_order_flow: CompiledFlow) -> None:
    d = order("offered")
    first = d.timers["offered/timers/0"]
    d.act("reject", "technician")
    d.send("work_order.offered")  # offered again: a new accept window
    second = d.timers["offered/timers/0"]
    assert second.state_step > first.state_step

    outcome = d.send(TimerFired("offered/timers/0", first.state_step))
    assert outcome.rejected_code == "stale_timer" and outcome.effects == []
    assert d.states == ("offered",)

    assert d.fire("offered/timers/0").ok
    repeat = d.send(TimerFired("offered/timers/0", second.state_step))  # delivered twice
    assert repeat.rejected_code == "stale_timer"
    assert d.send(TimerFired("nowhere/timers/9", 1)).rejected_code == "stale_timer"


def test_a_timer_of_a_state_already_left_is_ignored(order) -> None:
    d = order("offered")
    request = d.timers["offered/timers/0"]
    d.act("accept", "technician")
    outcome = d.send(TimerFired(request.timer_id, request.state_step))
    assert outcome.rejected_code == "stale_timer" and d.states == ("accepted",)


def test_feedback_closes_by_itself_after_three_days(order, now: datetime) -> None:
    d = order("completed")
    d.fire("completed/timers/0")
    assert d.states == ("feedback",)
    d.fire("feedback/timers/0")
    assert d.states == ("closed",) and d.state.final
    assert d.now == now + timedelta(days=4)


CANCELLABLE = ["new", "triaged", "dispatching", "offered", "accepted", "en_route"]


@pytest.mark.parametrize("state", CANCELLABLE)
def test_cancel_from_every_state_its_guard_allows(order, state: str) -> None:
    d = order(state)
    outcome = d.act("cancel", "customer")
    assert outcome.ok and d.states == ("cancelled",) and d.state.final
    assert fx.EmitEvent("work_order", "cancelled",
                        f"{RULE}: * -> cancelled (action cancel)") in outcome.effects
    assert not d.timers and outcome.taken[0].source == state


@pytest.mark.parametrize("state", ["on_site", "in_service", "completed", "feedback",
                                   "exception"])
def test_cancel_is_refused_where_its_guard_is_false(order, state: str) -> None:
    assert order(state).act("cancel", "dispatcher").rejected_code == "guard"


@pytest.mark.parametrize("state", ["closed", "cancelled"])
def test_a_final_state_takes_no_global_transition(order, state: str) -> None:
    d = order(state)
    assert d.act("cancel", "dispatcher").rejected_code == "ended"
    assert d.send("work_order.escalated").rejected_code == "ended"


def test_escalation_and_the_exception_state(order) -> None:
    d = order("offered")
    outcome = d.send("work_order.escalated")
    assert d.states == ("exception",)
    assert outcome.timers_to_cancel == ["offered/timers/0"]
    assert outcome.effects[-1] == fx.AddTag("work_order", "exception",
                                            f"{RULE}: enter exception")
    # a second escalation does not re-enter the state (no repeated tag, no storm)
    assert d.send("work_order.escalated").rejected_code == "no_transition"

    outcome = d.act("redispatch", "dispatcher")
    assert d.states == ("dispatching",)
    assert outcome.effects == [
        fx.RemoveTag("work_order", "exception", f"{RULE}: exit exception"),
        fx.RequestDispatch("nearby_skilled",
                           f"{RULE}: exception -> dispatching (action redispatch)"),
        fx.SetField("work_order", "status", "dispatching", f"{RULE}: enter dispatching"),
    ]


def test_a_technician_reports_a_problem_on_site(order) -> None:
    d = order("on_site")
    assert d.act("report_exception", "dispatcher").rejected_code == "forbidden"
    assert d.act("report_exception", "technician").ok
    assert d.states == ("exception",)
    assert d.act("close", "area_supervisor").ok and d.states == ("closed",)


def test_spare_parts_run_in_parallel_with_the_repair(order) -> None:
    d = order("in_service")
    assert d.act("request_parts", "technician").ok
    assert d.states == ("working", "waiting_parts")
    assert d.act("complete", "technician", resolution="换压缩机").ok
    assert d.states == ("repaired", "waiting_parts")
    # the repair is done but the parts branch is not: no join yet
    assert d.send("work_order.repair_done").rejected_code == "no_transition"
    assert d.act("parts_received", "customer").rejected_code == "forbidden"
    outcome = d.act("parts_received", "area_supervisor")
    assert d.states == ("completed",) and d.record["status"] == "completed"
    assert [t.trigger for t in outcome.taken] == ["action parts_received", "join"]


def test_form_values_must_belong_to_the_action_form(order) -> None:
    d = order("in_service")
    outcome = d.act("complete", "technician", price=3)
    assert outcome.rejected_code == "form"
    assert outcome.rejected == "form completion_report has no field price"
    d2 = order("on_site")
    outcome = d2.act("start_service", "technician", resolution="x")
    assert outcome.rejected == "action 'start_service' takes no form; send no values"
    assert d2.states == ("on_site",)


def test_available_actions_follow_roles_and_guards(order, work_order_flow: CompiledFlow,
                                                   now: datetime) -> None:
    d = order("offered")
    def names(*roles: str) -> list[str]:
        return [o.action for o in actions_available(work_order_flow, d.state,
                                                    frozenset(roles), d.record, now)]
    assert names("technician") == ["accept", "reject"]
    assert names("customer") == ["cancel"]
    assert names("dispatcher", "technician") == ["accept", "reject", "cancel"]
    d = order("triaged")
    assert names("dispatcher") == ["cancel"]  # no assignee yet
    d.record["assignee"] = "T-1"
    options = actions_available(work_order_flow, d.state, frozenset({"dispatcher"}),
                                d.record, now)
    assert options[0] == ActionOption("assign", {"zh": "手动指派", "en": "Assign by hand"},
                                      None, "accepted")


def test_an_event_name_without_the_entity_means_the_flow_entity(order,
                                                                work_order_flow) -> None:
    d = order("new")
    outcome = apply(work_order_flow, d.state, EventOccurred("created"), d.record, d.now)
    assert outcome.ok and outcome.state.states == ("triaged",)
    roles = ActionTaken("accept", ("technician",))
    assert apply(work_order_flow, outcome.state, roles, d.record,
                 d.now).rejected_code == "no_transition"
