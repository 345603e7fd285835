"""Tests for dispatchflow.rules.dispatch: decide(), Decision, summaries."""

from __future__ import annotations

import json
import random

import pytest

from dispatchflow.rules.dispatch import (
    ALREADY_TRIED,
    CandidatePool,
    Decision,
    RankedCandidate,
    decide,
    failed_filters,
    localized_label,
)
from dispatchflow.rules.geo import haversine_km

RULES = """\
dispatch policy anywhere for work_order from technician
  require technician.on_shift as "off shift / 不在班"
  require work_order.required_skill is null or work_order.required_skill in technician.skills
    as "lacking skill / 技能不符"
  score 3 - technician.open_orders as "load / 负载"
  score 2 if technician.region == "浦东" as "same area / 同区"
  tiebreak technician.rating desc

dispatch policy near for work_order from technician
  require technician.on_shift as "off shift / 不在班"
  require distance_km(technician.location, work_order.location) < 3km
          and technician.level >= coalesce(work_order.required_level, 1)
    as "too far or too junior / 太远或等级不足"
  score 3 - technician.open_orders
  tiebreak technician.rating desc
  tiebreak technician.name

dispatch policy twice for work_order from technician
  require 8km >= distance_km(work_order.location, technician.location) as "beyond 8 km / 超出8公里"
  require technician.on_shift as "off shift / 不在班"
  require distance_km(work_order.location, technician.location) <= 4km as "beyond 4 km / 超出4公里"
  score technician.open_orders
"""

CENTER = (31.23, 121.47)


@pytest.fixture
def policies(make_engine):
    engine = make_engine({"rules/dispatch.rules": RULES})
    return {name: engine.policy(name) for name in ("anywhere", "near", "twice")}


def conftest_techs(seed: int, n: int, offset) -> list[dict]:
    """Technicians of the tests' base schema: few distinct scores, so many ties."""
    rng = random.Random(seed)
    techs = []
    for i in range(n):
        loc = None if rng.random() < 0.05 else \
            offset(*CENTER, rng.uniform(-9, 9), rng.uniform(-9, 9))
        techs.append({"id": f"t{i:03d}", "name": rng.choice(["王", "李", "张"]) + "师傅",
                      "location": loc, "on_shift": rng.random() < 0.75,
                      "skills": rng.sample(["空调", "水工", "电工"], rng.randint(0, 2)),
                      "level": rng.randint(1, 4), "open_orders": rng.randint(0, 3),
                      "rating": rng.choice([None, 4.0, 4.5, 5.0]),
                      "region": rng.choice(["浦东", "徐汇"])})
    return techs


def conftest_orders(seed: int, n: int, offset) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": f"o{i}", "location": offset(*CENTER, rng.uniform(-8, 8), rng.uniform(-8, 8)),
             "required_skill": rng.choice([None, "空调", "水工"]),
             "required_level": rng.choice([None, 1, 2, 3]), "priority": "P3"}
            for i in range(n)]


def brute_force(policy, order, records, now, exclude=frozenset()):
    """The plain loop decide() must agree with: ``[(id, score)]`` in rank order."""
    eligible = []
    for record in records:
        if record["id"] in exclude:
            continue
        failed, score = policy.evaluate(order, record, now)
        if failed < 0:
            eligible.append((score, record))
    eligible.sort(key=lambda e: (-e[0], policy.tiebreak_key(order, e[1], now), e[1]["id"]))
    return [(r["id"], s) for s, r in eligible]


# ------------------------------------------------------------------ equals the plain loop


@pytest.mark.parametrize("name", ["anywhere", "near", "twice"])
@pytest.mark.parametrize("seed", range(4))
def test_decide_equals_brute_force(policies, offset, now, name: str, seed: int) -> None:
    policy = policies[name]
    techs = conftest_techs(seed, 250, offset)
    pool = CandidatePool.from_records(techs)
    rng = random.Random(seed)
    for order in conftest_orders(seed, 25, offset):
        exclude = frozenset(rng.sample([t["id"] for t in techs], rng.choice([0, 5])))
        decision = decide(policy, order, pool, now, exclude=exclude)
        assert [(r.id, r.score) for r in decision.ranked] == \
            brute_force(policy, order, techs, now, exclude)
        assert sum(decision.excluded.values()) + decision.eligible == decision.pool_size == 250


@pytest.mark.parametrize("name", ["nearby_skilled", "urgent_nearby", "low_priority_pool"])
def test_reference_policies_equal_brute_force(reference_engine, city, now, name: str) -> None:
    policy = reference_engine.policy(name)
    techs, orders = city(11, 600, 30)
    pool = CandidatePool.from_records(techs)
    for order in orders:
        decision = decide(policy, order, pool, now)
        assert [(r.id, r.score) for r in decision.ranked] == brute_force(policy, order, techs, now)


def test_exclusion_counts(policies, offset, now) -> None:
    """First failing filter; beyond the radius counts under the distance label (no filter run)."""
    policy = policies["twice"]
    techs = conftest_techs(5, 300, offset)
    pool = CandidatePool.from_records(techs)
    for order in conftest_orders(5, 20, offset):
        want: dict[str, int] = {}
        here = order["location"]
        for t in techs:
            loc = t["location"]
            if loc is None or haversine_km(here["lat"], here["lng"], loc["lat"], loc["lng"]) > 8:
                label = "beyond 8 km / 超出8公里"
            else:
                failed, _ = policy.evaluate(order, t, now)
                if failed < 0:
                    continue
                label = policy.filter_labels[failed]
            want[label] = want.get(label, 0) + 1
        decision = decide(policy, order, pool, now)
        assert decision.excluded == {k: want[k] for k in policy.filter_labels if k in want}
        assert decision.radius_km == 8.0
        assert decision.considered == 300 - want.get("beyond 8 km / 超出8公里", 0)


def test_policy_without_radius_considers_everyone(policies, offset, now) -> None:
    techs = conftest_techs(2, 100, offset)
    decision = decide(policies["anywhere"], conftest_orders(2, 1, offset)[0],
                      CandidatePool.from_records(techs), now)
    assert decision.radius_km is None and decision.considered == 100


# ------------------------------------------------------------------ summary


def fs_tech(cid: str, offset, north_km: float = 0.5, **fields) -> dict:
    base = {"id": cid, "location": offset(*CENTER, north_km, 0), "on_duty": True,
            "skills": ["aircon"], "level": 3, "open_tasks": 0, "rating_30d": 0.95}
    return {**base, **fields}


@pytest.fixture
def small_decision(reference_engine, offset, now) -> Decision:
    techs = [fs_tech(f"off{i}", offset, on_duty=False) for i in range(3)] + \
        [fs_tech(f"skill{i}", offset, skills=["plumbing"]) for i in range(2)] + \
        [fs_tech("far", offset, north_km=7.5), fs_tech("ok1", offset, north_km=1.0),
         fs_tech("ok2", offset, north_km=2.0), fs_tech("tried", offset)]
    order = {"id": "o1", "location": {"lat": CENTER[0], "lng": CENTER[1]},
             "category": "aircon", "required_level": 2, "priority": "P2"}
    return decide(reference_engine.policy("nearby_skilled"), order,
                  CandidatePool.from_records(techs), now, exclude={"tried"})


def test_summary_en_and_zh(small_decision: Decision) -> None:
    assert small_decision.excluded == {"off duty / 不在岗": 3, "lacking skill / 技能不符": 2,
                                       "beyond 5 km / 超出5公里": 1, ALREADY_TRIED: 1}
    assert small_decision.summary("en") == \
        "7 excluded: 3 off duty, 2 lacking skill, 1 beyond 5 km, 1 already tried"
    assert small_decision.summary("zh") == "排除 7 人：不在岗 3，技能不符 2，超出5公里 1，已尝试 1"
    assert small_decision.summary("zh-CN") == small_decision.summary("zh")
    assert small_decision.ids == ["ok1", "ok2"]


def test_summary_orders_by_count_then_filter_order() -> None:
    d = Decision("p", (), {"a / 甲": 1, "b / 乙": 4, "c / 丙": 1}, 6, 6, 0)
    assert d.summary("en") == "6 excluded: 4 b, 1 a, 1 c"
    assert d.summary("zh") == "排除 6 人：乙 4，甲 1，丙 1"


def test_summary_with_nobody_excluded() -> None:
    d = Decision("p", (RankedCandidate("t", 1.0),), {}, 1, 1, 1)
    assert d.summary() == "0 excluded"
    assert d.summary("zh") == "排除 0 人"
    assert d.best == RankedCandidate("t", 1.0)
    assert Decision("p", (), {}, 0, 0, 0).best is None


@pytest.mark.parametrize("label, en, zh", [
    ("off duty / 不在岗", "off duty", "不在岗"),
    ("在岗", "在岗", "在岗"),
    ("plain", "plain", "plain"),
    ("technician.x / 2 > 1", "technician.x / 2 > 1", "technician.x / 2 > 1"),
    ("a / b / 丙", "a / b", "丙"),
])
def test_localized_label(label: str, en: str, zh: str) -> None:
    assert localized_label(label, "en") == en
    assert localized_label(label, "zh") == zh


# ------------------------------------------------------------------ ranking details


def test_explained_terms_and_tiebreaks(small_decision: Decision) -> None:
    best = small_decision.ranked[0]
    labels = [label for label, _ in best.terms]
    assert labels == ["nearest / 距离最近", "fewer than 2 open tasks / 在手任务少于2单",
                      "30-day rating above 90% / 近30天好评率高于90%", "rating weighted / 评分加权"]
    assert sum(v for _, v in best.terms) == pytest.approx(best.score)
    distance, open_tasks = best.tiebreak
    assert distance == pytest.approx(1.0, abs=1e-3) and open_tasks == 0


def test_limit_and_explain_top(reference_engine, city, now) -> None:
    policy = reference_engine.policy("urgent_nearby")
    techs, orders = city(8, 800, 1, radius_km=6)
    pool = CandidatePool.from_records(techs)
    full = decide(policy, orders[0], pool, now)
    assert full.eligible > 15
    assert all(r.terms for r in full.ranked[:10]) and not any(r.terms for r in full.ranked[10:])
    top3 = decide(policy, orders[0], pool, now, limit=3, explain_top=2)
    assert top3.ids == full.ids[:3] and top3.eligible == full.eligible
    assert [bool(r.terms) for r in top3.ranked] == [True, True, False]
    assert decide(policy, orders[0], pool, now, limit=0).ranked == ()


def test_ties_are_broken_by_tiebreaks_then_id_whatever_the_insertion_order(
        policies, offset, now) -> None:
    policy = policies["near"]  # score 3 - open_orders; tiebreaks: rating desc, name
    same = {"on_shift": True, "level": 3, "open_orders": 1, "skills": [], "region": "浦东",
            "location": offset(*CENTER, 1, 1)}
    techs = [{"id": "c", "name": "王", "rating": 5.0, **same},
             {"id": "a", "name": "王", "rating": 4.0, **same},
             {"id": "b", "name": "李", "rating": 4.0, **same},
             {"id": "e", "name": "李", "rating": 4.0, **same},
             {"id": "d", "name": "李", "rating": None, **same},
             {"id": "f", "name": "王", "rating": 5.0, **{**same, "open_orders": 0}}]
    order = {"id": "o", "location": {"lat": CENTER[0], "lng": CENTER[1]}}
    want = ["f", "c", "b", "e", "a", "d"]  # score; rating desc (null last); name; id
    for seed in range(5):
        shuffled = techs[:]
        random.Random(seed).shuffle(shuffled)
        decision = decide(policy, order, CandidatePool.from_records(shuffled), now)
        assert decision.ids == want
    assert decision.ranked[1].tiebreak == (5.0, "王")
    assert decision.ranked[5].tiebreak == (None, "李")


def test_exclude_accepts_any_iterable(policies, offset, now) -> None:
    techs = conftest_techs(3, 60, offset)
    pool = CandidatePool.from_records(techs)
    order = conftest_orders(3, 1, offset)[0]
    base = decide(policies["anywhere"], order, pool, now)
    gone = base.ids[:2]
    for exclude in (gone, set(gone), iter(gone), {k: 1 for k in gone}):
        d = decide(policies["anywhere"], order, pool, now, exclude=exclude)
        assert d.ids == base.ids[2:] and d.excluded[ALREADY_TRIED] == 2


def test_to_dict_is_json(small_decision: Decision) -> None:
    data = json.loads(json.dumps(small_decision.to_dict(), ensure_ascii=False))
    assert data["policy"] == "nearby_skilled"
    assert [r["id"] for r in data["ranked"]] == ["ok1", "ok2"]
    assert data["ranked"][0]["terms"][0]["label"] == "nearest / 距离最近"
    assert data["excluded"][ALREADY_TRIED] == 1
    assert data["summary"]["zh"].startswith("排除 7 人")
    assert (data["pool_size"], data["eligible"], data["radius_km"]) == (9, 2, 5.0)


# ------------------------------------------------------------------ failed filters


def test_failed_filters_name_each_failing_filter_with_the_orders_values(policies, now) -> None:
    order = {"id": "o1", "location": CENTER, "required_skill": "水工", "required_level": 3}
    tech = {"id": "t1", "location": CENTER, "on_shift": False, "skills": ["空调"], "level": 1,
            "open_orders": 0, "rating": None, "region": "浦东", "name": "王师傅"}
    assert failed_filters(policies["anywhere"], order, tech, now, "zh") == [
        "不在班", "技能不符: 水工"]
    assert failed_filters(policies["anywhere"], order, tech, now, "en") == [
        "off shift", "lacking skill: 水工"]
    # a filter over a location and a level shows the plain values only
    assert failed_filters(policies["near"], order, tech, now, "en") == [
        "off shift", "too far or too junior: 3"]
    qualified = {**tech, "on_shift": True, "skills": ["水工"], "level": 3}
    assert failed_filters(policies["anywhere"], order, qualified, now) == []
