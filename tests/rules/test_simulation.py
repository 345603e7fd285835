"""Tests for dispatchflow.rules.simulation: offers, retries, escalation, jobs, SLA and metrics.

Hand-made cases use the reference bundle's policies with technicians whose
``accept_prob`` is forced to 1.0 or 0.0 and whose ``response_minutes`` is 0
(an immediate answer) or huge (always too late), so every outcome is exact.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.rules.demo_city import generate_city
from dispatchflow.rules.engine import Engine
from dispatchflow.rules.simulation import (
    AS_CONFIGURED,
    METRICS,
    OUTCOME_COLUMNS,
    SimulationConfig,
    SimulationError,
    SimulationMetrics,
    gini,
    simulate,
)

#: People's Square, Shanghai.
CENTER = (31.23, 121.47)
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
HERE = {"lat": CENTER[0], "lng": CENTER[1]}
EXACT = SimulationConfig(handling_spread=0.0)
NEVER = 1e9  # response_minutes of a technician who always answers too late


def offset(lat: float, lng: float, north_km: float, east_km: float) -> dict[str, float]:
    """A point ``north_km`` north and ``east_km`` east of ``(lat, lng)`` (small distances)."""
    return {"lat": lat + north_km / 111.195,
            "lng": lng + east_km / (111.195 * math.cos(math.radians(lat)))}


def tech(tid: str, accept: float, **kw: Any) -> dict[str, Any]:
    record = {"id": tid, "name": "李师傅", "skills": ["aircon", "plumbing"], "level": 3,
              "on_duty": True, "location": dict(HERE), "open_tasks": 0, "rating_30d": 0.8,
              "avg_handling_minutes": 30.0, "accept_prob": accept, "response_minutes": 0.0}
    record.update(kw)
    return record


def order(oid: str, minutes: float, **kw: Any) -> dict[str, Any]:
    record = {"id": oid, "created_at": T0 + timedelta(minutes=minutes), "title": "空调不制冷",
              "description": "开机后出风不凉", "category": "aircon", "priority": "P3",
              "customer": {"name": "王女士", "tier": "normal"}, "location": dict(HERE)}
    record.update(kw)
    return record


LEAK = {"title": "卫生间水管爆裂漏水", "category": "plumbing"}


def by_id(result: Any) -> dict[Any, Any]:
    return {o.order_id: o for o in result.outcomes}


def final(result: Any, tid: str) -> dict[str, Any]:
    return next(t for t in result.technicians if t["id"] == tid)


# ------------------------------------------------------------------ metrics helpers


@pytest.mark.parametrize("values, expected", [
    ([1, 1], 0.0), ([3, 3, 3], 0.0), ([2, 0], 0.5), ([0, 0, 0, 4], 0.75), ([], 0.0),
    ([0, 0], 0.0), ([1, 2, 3, 4], 0.25),
])
def test_gini(values: list[int], expected: float) -> None:
    assert gini(values) == pytest.approx(expected)


def test_gini_rejects_negative_values() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


def test_metric_catalogue_matches_the_metrics() -> None:
    assert {m.key for m in METRICS} == set(SimulationMetrics.__dataclass_fields__)
    assert {m.kind for m in METRICS} <= {"count", "rate", "minutes", "km", "ratio"}


# ------------------------------------------------------------------ a tiny hand-made day


def test_two_technicians_three_orders(reference_engine: Engine) -> None:
    # t2 ranks first (better rating) but never accepts; t1 always does.
    techs = [tech("t1", 1.0), tech("t2", 0.0, rating_30d=1.0, location=offset(*CENTER, 0, 1))]
    orders = [order("o1", 0), order("o2", 60), order("o3", 120, category="elevator",
                                                     title="电梯异响", description="电梯有摩擦声")]
    result = simulate(reference_engine, orders, techs, seed=1, policy="nearby_skilled",
                      config=EXACT)
    o1, o2, o3 = (by_id(result)[k] for k in ("o1", "o2", "o3"))
    assert result.label == "nearby_skilled"
    for o in (o1, o2):
        assert (o.status, o.technician, o.rounds, o.offers, o.rejections) == \
            ("assigned", "t1", 2, 2, 1)
        assert (o.minutes_to_accept, o.travel_km, o.minutes_to_arrival) == (0.0, 0.0, 0.0)
        assert o.completed_at == o.created_at + timedelta(minutes=30)
        assert (o.response_target_minutes, o.response_met) == (120.0, True)
        assert (o.onsite_target_minutes, o.onsite_met) == (1440.0, True)
    assert (o3.status, o3.rounds, o3.offers, o3.escalated_to) == \
        ("escalated", 1, 0, "area_supervisor")
    assert o3.reason == "no qualified candidate: 排除 2 人：技能不符 2"
    assert (o3.response_met, o3.onsite_met) == (False, False)

    m = result.metrics
    assert (m.orders, m.assigned, m.escalations, m.offers, m.rejections, m.expiries) == \
        (3, 2, 1, 4, 2, 0)
    assert m.assignment_rate == pytest.approx(2 / 3)
    assert (m.mean_minutes_to_accept, m.p90_minutes_to_accept, m.mean_travel_km) == (0, 0, 0)
    assert m.gini_jobs == pytest.approx(0.5)  # jobs [2, 0]
    assert m.sla_response_rate == pytest.approx(2 / 3)
    assert m.sla_onsite_rate == pytest.approx(2 / 3)
    assert dict(result.jobs) == {"t1": 2, "t2": 0}
    t1, t2 = final(result, "t1"), final(result, "t2")
    assert (t1["open_tasks"], t1["completed_count"], t1["consecutive_anomalies"]) == (0, 2, 0)
    assert (t2["rejected_count"], t2["consecutive_anomalies"]) == (2, 2)


def test_even_load_has_gini_zero(reference_engine: Engine) -> None:
    there = offset(*CENTER, 0, 3)
    techs = [tech("t1", 1.0), tech("t2", 1.0, location=there)]
    orders = [order("o1", 0), order("o2", 5, location=there)]
    result = simulate(reference_engine, orders, techs, policy="nearby_skilled", config=EXACT)
    assert [o.technician for o in result.outcomes] == ["t1", "t2"]
    assert dict(result.jobs) == {"t1": 1, "t2": 1}
    assert result.metrics.gini_jobs == 0.0


def test_nobody_accepts_escalates_when_candidates_run_out(reference_engine: Engine) -> None:
    techs = [tech("t1", 0.0), tech("t2", 0.0)]
    result = simulate(reference_engine, [order("o1", 0)], techs, policy="nearby_skilled")
    [o] = result.outcomes
    assert (o.status, o.rounds, o.offers, o.rejections) == ("escalated", 3, 2, 2)
    assert o.reason == "no qualified candidate: 排除 2 人：已尝试 2"
    assert result.metrics.escalations == 1 and result.metrics.assignment_rate == 0.0
    assert result.metrics.mean_minutes_to_accept is None
    assert result.metrics.p90_minutes_to_accept is None


def test_retries_are_used_up_then_escalation(reference_engine: Engine) -> None:
    techs = [tech(f"t{i}", 0.0) for i in range(6)]
    result = simulate(reference_engine, [order("o1", 0)], techs, policy="nearby_skilled")
    [o] = result.outcomes
    # nearby_skilled: one at a time, retry 3 -> four offers, then the area supervisor
    assert (o.status, o.rounds, o.offers, o.rejections) == ("escalated", 4, 4, 4)
    assert (o.reason, o.escalated_to) == ("no acceptance after 4 tries", "area_supervisor")


def test_late_answer_expires_and_the_next_candidate_gets_it(reference_engine: Engine) -> None:
    techs = [tech("slow", 1.0, rating_30d=1.0, response_minutes=NEVER), tech("quick", 1.0)]
    # a leak: triage makes it P1, whose accept window under nearby_skilled is 5 minutes
    result = simulate(reference_engine, [order("o1", 0, **LEAK)], techs,
                      policy="nearby_skilled")
    [o] = result.outcomes
    assert (o.priority, o.urgent, o.policy) == ("P1", True, "nearby_skilled")
    assert (o.technician, o.rounds, o.expiries, o.minutes_to_accept) == ("quick", 2, 1, 5.0)
    slow = final(result, "slow")
    assert (slow["expired_count"], slow["consecutive_anomalies"]) == (1, 1)


def test_broadcast_first_to_accept_wins_others_are_withdrawn(reference_engine: Engine) -> None:
    techs = [tech("near_slow", 1.0, response_minutes=NEVER),
             tech("far_fast", 1.0, location=offset(*CENTER, 2, 0)),
             tech("far_never", 0.0, location=offset(*CENTER, 3, 0), response_minutes=NEVER)]
    result = simulate(reference_engine, [order("o1", 0)], techs, policy="urgent_nearby")
    [o] = result.outcomes
    assert (o.strategy, o.technician, o.offers, o.rounds) == ("broadcast", "far_fast", 3, 1)
    assert (o.rejections, o.expiries) == (0, 0)  # the other offers were withdrawn
    assert o.travel_km == pytest.approx(2.0, abs=1e-3)
    assert final(result, "near_slow")["expired_count"] == 0


def test_grab_pool_first_claimer_wins_and_nobody_claiming_escalates(
        reference_engine: Engine) -> None:
    techs = [tech("t1", 0.0, on_time_rate=1.0), tech("t2", 1.0, on_time_rate=0.5)]
    result = simulate(reference_engine, [order("o1", 0, priority="P4")], techs,
                      policy="low_priority_pool")
    [o] = result.outcomes
    assert (o.strategy, o.technician, o.offers, o.rejections) == ("grab_pool", "t2", 2, 0)

    nobody = [tech("t1", 0.0), tech("t2", 0.0)]
    result = simulate(reference_engine, [order("o1", 0, priority="P4")], nobody,
                      policy="low_priority_pool")
    [o] = result.outcomes
    assert (o.status, o.expiries, o.rejections, o.escalated_to) == \
        ("escalated", 2, 0, "dispatcher")
    assert o.reason == "no acceptance after 1 tries"


def test_triage_chooses_the_policy_as_configured(reference_engine: Engine) -> None:
    techs = [tech("t1", 1.0)]
    orders = [order("leak", 0, **LEAK), order("normal", 1), order("low", 2, priority="P4"),
              order("vip", 3, customer={"name": "某公司", "tier": "VIP"})]
    result = simulate(reference_engine, orders, techs, config=EXACT)
    assert result.label == AS_CONFIGURED
    got = {o.order_id: (o.policy, o.strategy, o.priority) for o in result.outcomes}
    assert got == {"leak": ("urgent_nearby", "broadcast", "P1"),
                   "normal": ("nearby_skilled", "one_at_a_time", "P3"),
                   "low": ("low_priority_pool", "grab_pool", "P4"),
                   "vip": ("urgent_nearby", "broadcast", "P3")}


def test_busy_technician_misses_the_onsite_target(reference_engine: Engine) -> None:
    techs = [tech("t1", 1.0, avg_handling_minutes=300.0)]
    orders = [order("first", 0, **LEAK), order("second", 10, **LEAK)]
    result = simulate(reference_engine, orders, techs, config=EXACT)
    first, second = result.outcomes
    assert (first.response_met, first.onsite_met) == (True, True)
    # accepted at once, but on site only when the first job is done (P1 normal: 2 h)
    assert (second.minutes_to_accept, second.minutes_to_arrival) == (0.0, 290.0)
    assert (second.response_target_minutes, second.onsite_target_minutes) == (30.0, 120.0)
    assert (second.response_met, second.onsite_met) == (True, False)
    assert result.metrics.sla_onsite_rate == 0.5


def test_travel_time_and_the_technician_moves_to_the_order(reference_engine: Engine) -> None:
    there = offset(*CENTER, 4, 0)
    result = simulate(reference_engine, [order("o1", 0, location=there)], [tech("t1", 1.0)],
                      policy="nearby_skilled", config=SimulationConfig(speed_kmh=20.0))
    [o] = result.outcomes
    assert o.travel_km == pytest.approx(4.0, abs=1e-3)
    assert o.minutes_to_arrival == pytest.approx(12.0, abs=0.01)
    assert final(result, "t1")["location"] == there


def test_shift_window_sets_on_duty(reference_engine: Engine) -> None:
    techs = [tech("t1", 1.0, shift="09:00-10:00", on_duty=False)]
    orders = [order("in", 30), order("after", 90)]
    result = simulate(reference_engine, orders, techs, policy="nearby_skilled", config=EXACT)
    inside, after = result.outcomes
    assert inside.status == "assigned"
    assert (after.status, after.reason) == ("escalated",
                                            "no qualified candidate: 排除 1 人：不在岗 1")
    assert final(result, "t1")["on_duty"] is False


def test_no_policy_requested_is_reported(reference_engine: Engine) -> None:
    # no technician pool at all: the order is still triaged and escalated, not lost
    result = simulate(reference_engine, [order("o1", 0)], [])
    [o] = result.outcomes
    assert (o.status, o.policy) == ("escalated", "nearby_skilled")
    assert result.metrics.gini_jobs is None


# ------------------------------------------------------------------ determinism and inputs


def test_deterministic_for_a_seed(reference_engine: Engine) -> None:
    city = generate_city(5, technicians=40, orders=120)
    runs = [simulate(reference_engine, city.orders, city.technicians, seed=s) for s in (9, 9, 10)]
    assert runs[0].outcomes == runs[1].outcomes and runs[0].metrics == runs[1].metrics
    assert runs[0].outcomes != runs[2].outcomes
    assert runs[0].metrics.orders == 120 and runs[0].metrics.assigned > 30


def test_records_are_not_changed(reference_engine: Engine) -> None:
    city = generate_city(2, technicians=20, orders=40)
    orders, techs = list(city.orders), list(city.technicians)
    before = copy.deepcopy((orders, techs))
    simulate(reference_engine, orders, techs, seed=1)
    assert (orders, techs) == before


def test_progress_and_outcome_rows(reference_engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    result = simulate(reference_engine, [order("o1", 0), order("o2", 1)], [tech("t1", 1.0)],
                      progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    rows = result.outcome_rows()
    assert list(rows[0]) == list(OUTCOME_COLUMNS)
    assert rows[0]["order_id"] == "o1" and rows[0]["status"] == "assigned"


def test_unknown_policy_suggests_the_closest(reference_engine: Engine) -> None:
    with pytest.raises(SimulationError) as info:
        simulate(reference_engine, [], [], policy="nearby_skiled")
    text = str(info.value)
    assert text.startswith("unknown dispatch policy 'nearby_skiled' (hint: did you mean "
                           "'nearby_skilled'? policies: ")
    assert "urgent_nearby" in text


@pytest.mark.parametrize("orders, techs, message", [
    ([{"id": "o1"}], [], "order o1: created_at must be a timezone-aware datetime (got None)"),
    ([{"created_at": T0}], [], "an order record needs an 'id'"),
    ([], [tech("t1", 1.5)], "technician t1: accept_prob must be between 0 and 1 (got 1.5)"),
    ([], [tech("t1", 1.0, shift="nine to five")], "technician t1: not a shift: 'nine to five'"),
])
def test_bad_records(reference_engine: Engine, orders: list, techs: list, message: str) -> None:
    with pytest.raises(SimulationError) as info:
        simulate(reference_engine, orders, techs)
    assert str(info.value).startswith(message)
