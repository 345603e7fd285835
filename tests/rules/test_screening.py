"""Tests for dispatchflow.rules.screening: memoised leading filters agree with evaluate."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dispatchflow.rules.dispatch import CandidatePool, decide
from dispatchflow.rules.geo import GridIndex
from dispatchflow.rules.screening import FALSE, TRUE, Screen, screen_filters

RULES = """\
dispatch policy vip for work_order from technician
  require technician.on_shift as "off shift"
  require work_order.customer.tier != "vip" or technician.level >= 3 as "vip needs level 3"
  require coalesce(work_order.required_level, 1) <= technician.level as "level"
  require work_order.required_skill is null or work_order.required_skill in technician.skills
    as "skill"
  require work_order.scheduled_at is null or work_order.scheduled_at > now() as "in the past"
  require technician.open_orders < 3 as "busy"
  score technician.level

dispatch policy timely for work_order from technician
  require work_order.scheduled_at is null or work_order.scheduled_at > now()
  require technician.on_shift
"""


@pytest.fixture
def engine(make_engine):
    return make_engine({"rules/dispatch.rules": RULES})


def test_which_filters_are_screened(engine, reference_engine) -> None:
    vip = screen_filters(engine.policy("vip"))
    assert [f.index for f in vip] == [0, 1, 2, 3]  # stops at the one calling now()
    assert [f.paths for f in vip] == [(), (("customer", "tier"),), (("required_level",),),
                                      (("required_skill",),)]
    assert screen_filters(engine.policy("timely")) == ()
    nearby = screen_filters(reference_engine.policy("nearby_skilled"))
    assert [f.paths for f in nearby[:4]] == [(), (("category",),), (("required_level",),),
                                             (("location",),)]  # a geo value: never memoised


def test_keys_and_synthetic_orders(engine) -> None:
    tier = screen_filters(engine.policy("vip"))[1]
    assert tier.key({"customer": {"tier": "vip"}}) == ((str, "vip"),)
    assert tier.key({"customer": None}) == ((type(None), None),)
    assert tier.key({}) == ((type(None), None),)
    assert tier.key({"customer": 42}) is None  # not a record: the filter itself would fail
    assert tier.key({"customer": {"tier": ["x"]}}) is None  # unhashable
    assert tier.synthetic_order(((str, "gold"),)) == {"customer": {"tier": "gold"}}
    level = screen_filters(engine.policy("vip"))[2]
    assert level.key({"required_level": 1}) != level.key({"required_level": True})


def make_world(seed: int, n: int, m: int, offset):
    rng = random.Random(seed)
    techs = [{"id": f"t{i:03d}", "location": offset(31.23, 121.47, rng.uniform(-3, 3),
                                                    rng.uniform(-3, 3)),
              "on_shift": rng.random() < 0.7, "level": rng.randint(1, 4),
              "skills": rng.choice([None, [], ["空调"], ["空调", "水工"]]),
              "open_orders": rng.randint(0, 4), "rating": 4.0} for i in range(n)]
    customers = [None, {"tier": "vip"}, {"tier": "gold"}, {"tier": None}, {"name": "x"}]
    orders = [{"id": f"o{i}", "location": offset(31.23, 121.47, 0, 0),
               "customer": rng.choice(customers), "required_level": rng.choice([None, 1, 2, 3]),
               "required_skill": rng.choice([None, "空调", "电工"]),
               "scheduled_at": None} for i in range(m)]
    return techs, orders


def brute(policy, order, techs, now):
    out, fails = [], {}
    for t in techs:
        failed, score = policy.evaluate(order, t, now)
        if failed < 0:
            out.append((t["id"], score))
        else:
            label = policy.filter_labels[failed]
            fails[label] = fails.get(label, 0) + 1
    return sorted(out, key=lambda e: (-e[1], e[0])), fails


@pytest.mark.parametrize("seed", range(4))
def test_screened_search_equals_evaluate(engine, offset, now, seed: int) -> None:
    """No radius here: the whole pool is searched, so counts equal the plain loop exactly."""
    policy = engine.policy("vip")
    techs, orders = make_world(seed, 150, 40, offset)
    pool = CandidatePool.from_records(techs)
    for order in orders:
        decision = decide(policy, order, pool, now)
        ranked, fails = brute(policy, order, techs, now)
        assert [(r.id, r.score) for r in decision.ranked] == ranked
        assert decision.excluded == fails


def test_memo_follows_upserts_and_overflow(engine, offset, now, monkeypatch) -> None:
    import dispatchflow.rules.screening as screening

    monkeypatch.setattr(screening, "MAX_KEYS", 2)  # forces the memo to be dropped often
    policy = engine.policy("vip")
    techs, orders = make_world(9, 80, 60, offset)
    pool = CandidatePool.from_records(techs)
    rng = random.Random(3)
    for step, order in enumerate(orders):
        if step % 3 == 0:  # change some technicians between decisions
            for t in rng.sample(techs, 10):
                t.update(on_shift=not t["on_shift"], level=rng.randint(1, 4))
                pool.upsert(t)
        decision = decide(policy, order, pool, now)
        ranked, fails = brute(policy, order, techs, now)
        assert [(r.id, r.score) for r in decision.ranked] == ranked
        assert decision.excluded == fails


def test_a_filter_that_raises_is_left_to_evaluate(reference_engine, offset, now) -> None:
    policy = reference_engine.policy("nearby_skilled")
    good = {"id": "a", "location": offset(31.23, 121.47, 1, 0), "on_duty": True,
            "skills": ["aircon"], "level": 3, "open_tasks": 0, "rating_30d": 0.9}
    broken = {**good, "id": "b", "level": None}  # required field missing: the policy fails
    order = {"id": "o", "location": {"lat": 31.23, "lng": 121.47}, "category": "aircon",
             "required_level": 2, "priority": "P3"}
    with pytest.raises(Exception) as plain:  # noqa: B017 - whatever the loop raises
        for t in (good, broken):
            policy.evaluate(order, t, now)
    with pytest.raises(type(plain.value)):
        decide(policy, order, CandidatePool.from_records([good, broken]), now)


def test_apply_over_many_orders_equals_one_at_a_time(engine, offset) -> None:
    policy = engine.policy("vip")
    techs, orders = make_world(5, 60, 30, offset)
    index = GridIndex()
    for t in techs:
        index.insert(t["id"], t["location"]["lat"], t["location"]["lng"], t)
    slots = np.array([index.slot(t["id"]) for t in techs])
    rows = np.repeat(np.arange(len(orders)), len(slots))
    pairs = np.tile(slots, len(orders))
    many = Screen(screen_filters(policy))
    keep, _ = many.apply(orders, rows, pairs, index.items_of, index.capacity)
    one = Screen(screen_filters(policy))
    for r, order in enumerate(orders):
        keep_one, _ = one.apply([order], None, slots, index.items_of, index.capacity)
        assert keep[rows == r].tolist() == keep_one.tolist()
    assert {int(v) for memo in many._memo for cells in memo.values() for v in cells} <= \
        {-1, FALSE, TRUE}
