"""Tests for dispatchflow.rules.candidates: policy radius, the candidate pool, search."""

from __future__ import annotations

import random

import pytest

from dispatchflow.rules.candidates import (
    ALREADY_TRIED,
    CandidatePool,
    policy_radius_km,
    search,
    search_box,
    search_many,
)
from dispatchflow.rules.geo import haversine_km

RULES = """\
dispatch policy anywhere for work_order from technician
  require technician.on_shift as "off shift / 不在班"
  require work_order.required_skill is null or work_order.required_skill in technician.skills
    as "lacking skill / 技能不符"
  score 3 - technician.open_orders as "load / 负载"

dispatch policy swapped for work_order from technician
  require technician.on_shift
  require distance_km(technician.location, work_order.location) < 3km
          and technician.level >= coalesce(work_order.required_level, 1)
    as "too far or too junior / 太远或等级不足"

dispatch policy twice for work_order from technician
  require 8km >= distance_km(work_order.location, technician.location) as "beyond 8 km / 超出8公里"
  require technician.on_shift as "off shift / 不在班"
  require distance_km(work_order.location, technician.location) <= 4km as "beyond 4 km / 超出4公里"
  score technician.open_orders

dispatch policy either for work_order from technician
  require distance_km(work_order.location, technician.location) <= 3km or technician.level >= 5

dispatch policy by_field for work_order from technician
  require distance_km(work_order.location, technician.location) <= 1km * work_order.parts_count
"""


@pytest.fixture
def policies(make_engine):
    engine = make_engine({"rules/dispatch.rules": RULES})
    return {name: engine.policy(name) for name in
            ("anywhere", "swapped", "twice", "either", "by_field")}


def test_reference_policies_radius(reference_engine) -> None:
    assert policy_radius_km(reference_engine.policy("nearby_skilled")) == 5.0
    assert policy_radius_km(reference_engine.policy("urgent_nearby")) == 10.0
    assert policy_radius_km(reference_engine.policy("low_priority_pool")) == 15.0


@pytest.mark.parametrize("name, radius", [
    ("anywhere", None),  # no distance clause
    ("swapped", 3.0),    # arguments swapped, strict <, one part of an `and`
    ("twice", 8.0),      # two clauses on the same locations: the larger bounds both
    ("either", None),    # under an `or` the distance bounds nothing
    ("by_field", None),  # not a literal
])
def test_policy_radius(policies, name: str, radius: float | None) -> None:
    assert policy_radius_km(policies[name]) == radius


# ------------------------------------------------------------------ pool


def tech(cid: str, lat: float = 31.23, lng: float = 121.47, **fields) -> dict:
    return {"id": cid, "location": {"lat": lat, "lng": lng}, "on_shift": True,
            "skills": ["空调"], "level": 3, "open_orders": 0, "rating": 0.9, **fields}


def test_pool_upsert_replace_remove() -> None:
    pool = CandidatePool.from_records([tech("a"), tech("b", 31.30)])
    assert len(pool) == 2 and "a" in pool
    assert {r["id"] for r in pool.within(31.23, 121.47, 1.0)[0]} == {"a"}
    moved = tech("a", 31.30)
    pool.upsert(moved)
    assert len(pool) == 2 and pool.get("a") is moved
    assert {r["id"] for r in pool.within(31.30, 121.47, 1.0)[0]} == {"a", "b"}
    assert pool.remove("a") is True
    assert pool.remove("a") is False
    assert pool.get("a") is None and len(pool) == 1
    assert [r["id"] for r in pool] == ["b"]


def test_pool_keeps_records_without_location_unindexed() -> None:
    pool = CandidatePool.from_records([tech("a"), {**tech("b"), "location": None},
                                       {**tech("c"), "location": {"lat": "x", "lng": 1}}])
    assert len(pool) == 3 and len(pool.index) == 1
    pool.upsert({**tech("a"), "location": None})  # losing its position un-indexes it
    assert len(pool.index) == 0
    pool.upsert(tech("b"))
    assert list(pool.index) == ["b"]


def test_pool_location_field_is_configurable() -> None:
    pool = CandidatePool.from_records([{"id": 1, "base": {"lat": 31.0, "lng": 121.0}}],
                                      location_field="base")
    assert pool.within(31.0, 121.0, 1.0)[0][0]["id"] == 1


def test_record_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="needs an 'id'"):
        CandidatePool.from_records([{"location": {"lat": 31.0, "lng": 121.0}}])


def test_within_distances() -> None:
    pool = CandidatePool.from_records([tech("a"), tech("b", 31.24)])
    records, dist = pool.within(31.23, 121.47, 5.0, distances=True)
    assert dist is not None
    got = {r["id"]: d for r, d in zip(records, dist, strict=True)}
    assert got["a"] == pytest.approx(0.0, abs=1e-9)
    assert got["b"] == pytest.approx(haversine_km(31.23, 121.47, 31.24, 121.47))


# ------------------------------------------------------------------ search


def first_failures(policy, order, records, now, radius_label=None, radius=None):
    """Exclusion counts the way search() defines them, by brute force."""
    counts: dict[str, int] = {}
    for record in records:
        loc = record.get("location")
        if radius is not None and (loc is None or haversine_km(
                order["location"]["lat"], order["location"]["lng"],
                loc["lat"], loc["lng"]) > radius):
            label = radius_label
        else:
            failed, _ = policy.evaluate(order, record, now)
            if failed < 0:
                continue
            label = policy.filter_labels[failed]
        counts[label] = counts.get(label, 0) + 1
    return counts


def test_leading_candidate_filters_are_screened_and_counted(reference_engine, city, now) -> None:
    policy = reference_engine.policy("low_priority_pool")  # on_duty is candidate-only
    techs, orders = city(3, 400, 20)
    pool = CandidatePool.from_records(techs)
    for order in orders:
        found = search(policy, order, pool, now)
        want = first_failures(policy, order, techs, now, "beyond 15 km / 超出15公里", 15.0)
        assert found.excluded == {k: want[k] for k in policy.filter_labels if k in want}
        assert sum(found.excluded.values()) + len(found.scored) == len(techs)


def test_screen_follows_upserts(reference_engine, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    order = {"id": "o", "location": {"lat": 31.23, "lng": 121.47}, "category": "aircon",
             "required_level": 1, "priority": "P3"}
    record = {"id": "t", "location": {"lat": 31.23, "lng": 121.47}, "on_duty": False,
              "skills": ["aircon"], "level": 3, "open_tasks": 0, "rating_30d": 0.9}
    pool = CandidatePool.from_records([record])
    assert search(policy, order, pool, now).excluded == {"off duty / 不在岗": 1}
    pool.upsert({**record, "on_duty": True})
    found = search(policy, order, pool, now)
    assert [s[1] for s in found.scored] == ["t"] and found.excluded == {}
    pool.upsert({**record, "on_duty": False, "location": {"lat": 31.5, "lng": 121.47}})
    assert search(policy, order, pool, now).excluded == {"beyond 5 km / 超出5公里": 1}


def test_skip_counts_as_already_tried(reference_engine, city, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    techs, orders = city(4, 300, 5, radius_km=4)
    pool = CandidatePool.from_records(techs)
    order = orders[0]
    everyone = search(policy, order, pool, now)
    tried = {s[1] for s in everyone.scored[:3]} | {techs[0]["id"]}
    found = search(policy, order, pool, now, frozenset(tried))
    assert not tried & {s[1] for s in found.scored}
    assert found.excluded[ALREADY_TRIED] >= 3
    assert sum(found.excluded.values()) + len(found.scored) == len(techs)
    assert found.considered == everyone.considered - found.excluded[ALREADY_TRIED]


@pytest.mark.parametrize("name", ["nearby_skilled", "urgent_nearby", "low_priority_pool"])
def test_search_many_equals_search(reference_engine, city, now, name: str) -> None:
    policy = reference_engine.policy(name)
    techs, orders = city(5, 500, 60)
    pool = CandidatePool.from_records(techs)
    rng = random.Random(1)
    skips = [frozenset(rng.sample([t["id"] for t in techs], 40)) for _ in orders]
    many = search_many(policy, orders, pool, now, skips)
    for order, skip, got in zip(orders, skips, many, strict=True):
        one = search(policy, order, pool, now, skip, want_km=True).scored
        key = lambda s: s[1]  # noqa: E731
        assert [(s[0], s[1]) for s in sorted(got, key=key)] == \
            [(s[0], s[1]) for s in sorted(one, key=key)]
        for (_, _, _, km1), (_, _, _, km2) in zip(sorted(got, key=key), sorted(one, key=key),
                                                  strict=True):
            assert km1 == pytest.approx(km2, abs=1e-9)


def test_order_without_location_scans_the_pool(policies, now) -> None:
    policy = policies["twice"]  # the locations are nullable here: null distance fails
    pool = CandidatePool.from_records([tech("a"), tech("b", on_shift=False)])
    order = {"id": "o", "location": None}
    found = search(policy, order, pool, now)
    assert found.radius_km is None and found.scored == []
    assert found.excluded == {"beyond 8 km / 超出8公里": 2} and found.considered == 2
    assert search_many(policy, [order], pool, now) == [[]]


def test_search_box(reference_engine, policies, offset) -> None:
    order = {"id": "o", "location": {"lat": 31.23, "lng": 121.47}}
    box = search_box(reference_engine.policy("nearby_skilled"), order)
    assert box is not None and box.field == "location"
    for bearing_north, east in ((5, 0), (-5, 0), (0, 4.99), (0, -4.99), (3.5, 3.5)):
        p = offset(31.23, 121.47, bearing_north * 0.999, east)
        assert box.min_lat <= p["lat"] <= box.max_lat
        assert box.min_lng <= p["lng"] <= box.max_lng
    assert box.max_lat - box.min_lat == pytest.approx(10 / 111.195, rel=1e-3)
    assert search_box(policies["anywhere"], order) is None
    assert search_box(reference_engine.policy("nearby_skilled"), {"location": None}) is None
