"""Tests for dispatchflow.rules.matching: optimal batch assignment vs brute force and greedy."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from dispatchflow.rules.dispatch import CandidatePool, decide
from dispatchflow.rules.geo import haversine_km
from dispatchflow.rules.matching import BatchResult, match_batch


def km_between(order: dict, tech: dict) -> float:
    a, b = order["location"], tech["location"]
    return haversine_km(a["lat"], a["lng"], b["lat"], b["lng"])


def brute_force(policy, orders, techs, now, capacity, cost):
    """The best (served, total km or score) over every feasible assignment."""
    options = []
    for order in orders:
        eligible = []
        for t in techs:
            failed, score = policy.evaluate(order, t, now)
            if failed < 0 and capacity(t["id"]) > 0:
                eligible.append((t["id"], km_between(order, t), score))
        options.append([None, *eligible])
    best = None
    for choice in itertools.product(*options):
        used: dict[str, int] = {}
        for c in choice:
            if c is not None:
                used[c[0]] = used.get(c[0], 0) + 1
        if any(n > capacity(cid) for cid, n in used.items()):
            continue
        picked = [c for c in choice if c is not None]
        km = sum(c[1] for c in picked)
        score = sum(c[2] for c in picked)
        key = (-len(picked), km) if cost == "distance" else (-len(picked), -score)
        if best is None or key < best[0]:
            best = (key, km, score)
    assert best is not None
    return -best[0][0], best[1], best[2]


def total_score(policy, orders, techs, assignments, now) -> float:
    by_id = {t["id"]: t for t in techs}
    return sum(policy.evaluate(o, by_id[assignments[o["id"]]], now)[1]
               for o in orders if o["id"] in assignments)


@pytest.mark.parametrize("solver", ["dense", "sparse", "auto"])
@pytest.mark.parametrize("seed", range(6))
def test_batch_is_optimal_with_unit_capacity(reference_engine, city, now, seed: int,
                                             solver: str) -> None:
    policy = reference_engine.policy("nearby_skilled")
    techs, orders = city(seed, 7, 5, radius_km=3)
    for t in techs:
        t["on_duty"] = True
        t["skills"] = ["aircon", "plumbing"]
    for o in orders:
        o["category"] = random.Random(o["id"]).choice(["aircon", "plumbing", "hvac"])
    result = match_batch(policy, orders, CandidatePool.from_records(techs), now, solver=solver)
    served, km, _ = brute_force(policy, orders, techs, now, lambda cid: 1, "distance")
    assert len(result.assignments) == served
    assert result.total_km == pytest.approx(km, abs=1e-4)
    assert len(set(result.assignments.values())) == len(result.assignments)
    assert set(result.unassigned) == {o["id"] for o in orders} - set(result.assignments)


@pytest.mark.parametrize("solver", ["dense", "sparse"])
@pytest.mark.parametrize("seed", range(6))
def test_batch_respects_capacity_and_is_optimal(reference_engine, city, now, seed: int,
                                                solver: str) -> None:
    policy = reference_engine.policy("urgent_nearby")
    techs, orders = city(100 + seed, 4, 6, radius_km=3)
    for t in techs:
        t.update(on_duty=True, skills=["aircon"], level=5)
    for o in orders:
        o["category"] = "aircon"
    rng = random.Random(seed)
    caps = {t["id"]: rng.randint(0, 3) for t in techs[1:]}  # techs[0] is missing: takes none
    result = match_batch(policy, orders, CandidatePool.from_records(techs), now,
                         capacity=caps, solver=solver)
    served, km, _ = brute_force(policy, orders, techs, now, lambda cid: caps.get(cid, 0),
                                "distance")
    assert len(result.assignments) == served
    assert result.total_km == pytest.approx(km, abs=1e-4)
    for cid in set(result.assignments.values()):
        assert list(result.assignments.values()).count(cid) <= caps.get(cid, 0)
    for cid in set(result.greedy_assignments.values()):
        assert list(result.greedy_assignments.values()).count(cid) <= caps.get(cid, 0)
    assert techs[0]["id"] not in result.assignments.values()


@pytest.mark.parametrize("seed", range(4))
def test_cost_score_maximises_total_score(reference_engine, city, now, seed: int) -> None:
    policy = reference_engine.policy("nearby_skilled")
    techs, orders = city(200 + seed, 6, 5, radius_km=3)
    for t in techs:
        t.update(on_duty=True, skills=["aircon"], level=5)
    for o in orders:
        o["category"] = "aircon"
    result = match_batch(policy, orders, CandidatePool.from_records(techs), now, cost="score")
    served, _, score = brute_force(policy, orders, techs, now, lambda cid: 1, "score")
    assert len(result.assignments) == served
    assert total_score(policy, orders, techs, result.assignments, now) == \
        pytest.approx(score, abs=1e-3)


def test_greedy_takes_orders_in_arrival_order(reference_engine, city, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    techs, orders = city(7, 300, 80, radius_km=5)
    pool = CandidatePool.from_records(techs)
    caps = {t["id"]: 1 + i % 2 for i, t in enumerate(techs)}
    result = match_batch(policy, orders, pool, now, capacity=caps)
    left = dict(caps)
    want = {}
    for order in orders:
        for cid in decide(policy, order, pool, now).ids:
            if left[cid] > 0:
                want[order["id"]] = cid
                left[cid] -= 1
                break
    assert result.greedy_assignments == want
    assert list(result.greedy_assignments) == [o["id"] for o in orders if o["id"] in want]
    assert result.greedy_unassigned == [o["id"] for o in orders if o["id"] not in want]


@pytest.mark.parametrize("seed", range(5))
def test_batch_never_travels_more_than_greedy(reference_engine, city, now, seed: int) -> None:
    policy = reference_engine.policy("urgent_nearby")
    techs, orders = city(300 + seed, 200, 60, radius_km=6)
    result = match_batch(policy, orders, CandidatePool.from_records(techs), now)
    assert len(result.assignments) >= len(result.greedy_assignments)
    if len(result.assignments) == len(result.greedy_assignments):
        assert result.excess_pct >= -1e-6
        assert result.greedy_total_km >= result.total_km - 1e-6
    # every assignment is eligible and its distance is counted
    by_id = {t["id"]: t for t in techs}
    km = 0.0
    for order in orders:
        cid = result.assignments.get(order["id"])
        if cid is not None:
            assert policy.evaluate(order, by_id[cid], now)[0] == -1
            km += km_between(order, by_id[cid])
    assert result.total_km == pytest.approx(km, abs=1e-6)


def test_dense_and_sparse_agree(reference_engine, city, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    techs, orders = city(17, 400, 150, radius_km=6)
    pool = CandidatePool.from_records(techs)
    dense = match_batch(policy, orders, pool, now, solver="dense")
    sparse = match_batch(policy, orders, pool, now, solver="sparse")
    assert len(dense.assignments) == len(sparse.assignments)
    assert dense.total_km == pytest.approx(sparse.total_km, abs=1e-3)


def test_exclude_and_unreachable_orders(reference_engine, offset, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    here = (31.23, 121.47)

    def tech(cid: str, north: float) -> dict:
        return {"id": cid, "location": offset(*here, north, 0), "on_duty": True,
                "skills": ["aircon"], "level": 3, "open_tasks": 0, "rating_30d": 0.9}

    orders = [{"id": "o1", "location": {"lat": here[0], "lng": here[1]}, "category": "aircon",
               "required_level": 1},
              {"id": "o2", "location": offset(*here, 0.2, 0), "category": "aircon",
               "required_level": 1},
              {"id": "far", "location": offset(*here, 50, 0), "category": "aircon",
               "required_level": 1}]
    pool = CandidatePool.from_records([tech("a", 0.1), tech("b", 3.0)])
    result = match_batch(policy, orders, pool, now, exclude={"o1": ["a"]})
    assert result.assignments == {"o1": "b", "o2": "a"}
    assert result.unassigned == ["far"]
    assert result.greedy_assignments == {"o1": "b", "o2": "a"}
    assert result.excess_pct == 0.0


def test_empty_batch(reference_engine, now) -> None:
    result = match_batch(reference_engine.policy("nearby_skilled"), [], CandidatePool(), now)
    assert result.assignments == {} and result.total_km == 0 and result.excess_pct == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"cost": "time"}, "unknown cost"),
    ({"solver": "magic"}, "unknown solver"),
])
def test_bad_arguments(reference_engine, now, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        match_batch(reference_engine.policy("nearby_skilled"), [], CandidatePool(), now, **kwargs)


@pytest.mark.parametrize("orders, message", [
    ([{"location": None}], "needs an 'id'"),
    ([{"id": "x", "location": None}, {"id": "x", "location": None}], "same order id twice"),
])
def test_bad_orders(policy_anywhere, now, orders: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        match_batch(policy_anywhere, orders, CandidatePool(), now)


@pytest.fixture
def policy_anywhere(make_engine):
    return make_engine({"rules/dispatch.rules": """\
dispatch policy anywhere for work_order from technician
  require technician.on_shift
"""}).policy("anywhere")


def test_policy_without_radius_uses_the_order_location(policy_anywhere, offset, now) -> None:
    here = (31.23, 121.47)
    techs = [{"id": "near", "on_shift": True, "location": offset(*here, 1, 0)},
             {"id": "far", "on_shift": True, "location": offset(*here, 9, 0)},
             {"id": "nowhere", "on_shift": True, "location": None}]
    orders = [{"id": "o1", "location": {"lat": here[0], "lng": here[1]}},
              {"id": "o2", "location": offset(*here, 10, 0)},
              {"id": "o3", "location": None}]
    pool = CandidatePool.from_records(techs)
    result = match_batch(policy_anywhere, orders, pool, now)
    assert result.assignments == {"o1": "near", "o2": "far"}
    assert result.unassigned == ["o3"]  # no travel distance under cost="distance"
    by_score = match_batch(policy_anywhere, orders, pool, now, cost="score")
    assert len(by_score.assignments) == 3


def test_to_dict_is_json(reference_engine, city, now) -> None:
    techs, orders = city(9, 50, 10, radius_km=4)
    result = match_batch(reference_engine.policy("nearby_skilled"), orders,
                         CandidatePool.from_records(techs), now)
    assert isinstance(result, BatchResult)
    data = json.loads(json.dumps(result.to_dict()))
    assert {(a["order"], a["candidate"]) for a in data["assignments"]} == \
        set(result.assignments.items())
    assert data["excess_pct"] == pytest.approx(result.excess_pct)
