"""Tests for dispatchflow.rules.policy: filters, scores, explanations, tiebreaks, offers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatchflow.rules.policy import CompiledPolicy, Explanation

POLICY = """\
dispatch policy nearest for work_order from technician
  require technician.on_shift as "在岗"
  require technician.level >= coalesce(work_order.required_level, 1)
  require work_order.required_skill is null
          or work_order.required_skill in technician.skills as "技能匹配"
  score 10 - technician.open_orders as "负载"
  score technician.rating as "评分"
  score 5 if technician.region == "浦东" as "同区"
  score 3 if work_order.escalated
  tiebreak technician.rating desc
  tiebreak technician.name
  offer one at a time,
    accept within (if work_order.priority == "P1" then 5m else 15m),
    retry 2 then escalate to role "supervisor"

dispatch policy anyone for work_order from technician
  require technician.on_shift
"""


@pytest.fixture
def nearest(make_engine) -> CompiledPolicy:
    return make_engine({"rules/dispatch.rules": POLICY}).policy("nearest")


@pytest.fixture
def anyone(make_engine) -> CompiledPolicy:
    return make_engine({"rules/dispatch.rules": POLICY}).policy("anyone")


ORDER = {"title": "空调不制冷", "priority": "P2", "required_level": 2,
         "required_skill": "空调", "escalated": False}


def tech(**fields) -> dict:
    base = {"name": "李师傅", "on_shift": True, "level": 3, "skills": ["空调", "电工"],
            "open_orders": 2, "rating": 4.5, "region": "浦东"}
    return {**base, **fields}


CANDIDATES = [
    tech(),
    tech(name="王师傅", on_shift=False),
    tech(name="张师傅", level=1),
    tech(name="赵师傅", skills=["水工"]),
    tech(name="钱师傅", rating=None, region="徐汇", open_orders=0),
    tech(name="孙师傅", skills=None),
]


def test_labels(nearest) -> None:
    assert nearest.filter_labels == [
        "在岗", "technician.level >= coalesce(work_order.required_level, 1)", "技能匹配"]
    assert nearest.term_labels == ["负载", "评分", "同区", "score 4"]


def test_eligible_candidate_gets_the_sum_of_its_terms(nearest, now) -> None:
    assert nearest.evaluate(ORDER, tech(), now) == (-1, 8 + 4.5 + 5 + 0)


@pytest.mark.parametrize("candidate, failed", [
    (tech(on_shift=False), 0),
    (tech(on_shift=False, level=0), 0),  # the first failing requirement is the one reported
    (tech(level=1), 1),
    (tech(skills=["水工"]), 2),
    (tech(skills=None), 2),  # null list: membership is false
])
def test_first_failing_requirement(nearest, now, candidate: dict, failed: int) -> None:
    assert nearest.evaluate(ORDER, candidate, now) == (failed, None)


def test_requirement_reading_the_order(nearest, now) -> None:
    no_skill = {**ORDER, "required_skill": None, "required_level": None}
    assert nearest.evaluate(no_skill, tech(skills=None, level=1), now)[0] == -1


def test_null_score_term_counts_zero(nearest, now) -> None:
    exp = nearest.explain(ORDER, tech(rating=None), now)
    assert exp.terms == [("负载", 8.0), ("评分", 0.0), ("同区", 5.0), ("score 4", 0.0)]
    assert nearest.evaluate(ORDER, tech(rating=None), now) == (-1, 13)


def test_guards(nearest, now) -> None:
    assert dict(nearest.explain(ORDER, tech(region="徐汇"), now).terms)["同区"] == 0.0
    assert dict(nearest.explain(ORDER, tech(region=None), now).terms)["同区"] == 0.0
    escalated = {**ORDER, "escalated": True}
    assert dict(nearest.explain(escalated, tech(), now).terms)["score 4"] == 3.0
    assert nearest.evaluate(escalated, tech(), now) == (-1, 8 + 4.5 + 5 + 3)


def test_explain_of_an_eligible_candidate(nearest, now) -> None:
    assert nearest.explain(ORDER, tech(), now) == Explanation(
        eligible=True, excluded_by=None,
        filters=[("在岗", True),
                 ("technician.level >= coalesce(work_order.required_level, 1)", True),
                 ("技能匹配", True)],
        terms=[("负载", 8.0), ("评分", 4.5), ("同区", 5.0), ("score 4", 0.0)],
        score=17.5, tiebreak=((0, -4.5), (0, "李师傅")))


def test_explain_of_an_excluded_candidate(nearest, now) -> None:
    exp = nearest.explain(ORDER, tech(on_shift=False, skills=["水工"]), now)
    assert (exp.eligible, exp.excluded_by, exp.score) == (False, "在岗", None)
    # Every filter is still evaluated, for the console's candidate list.
    assert [ok for _, ok in exp.filters] == [False, True, False]


@pytest.mark.parametrize("candidate", CANDIDATES, ids=[c["name"] for c in CANDIDATES])
@pytest.mark.parametrize("escalated", [False, True])
def test_evaluate_and_explain_agree(nearest, now, candidate: dict, escalated: bool) -> None:
    order = {**ORDER, "escalated": escalated}
    failed, score = nearest.evaluate(order, candidate, now)
    exp = nearest.explain(order, candidate, now)
    assert (failed == -1) is exp.eligible
    if exp.eligible:
        assert score == pytest.approx(exp.score)
    else:
        assert exp.excluded_by == nearest.filter_labels[failed]
        assert score is None


def test_policy_without_scores_scores_zero(anyone, now) -> None:
    assert anyone.evaluate(ORDER, tech(), now) == (-1, 0)
    exp = anyone.explain(ORDER, tech(), now)
    assert (exp.terms, exp.score, exp.tiebreak) == ([], 0, ())
    assert anyone.filter_labels == ["technician.on_shift"]


# ------------------------------------------------------------------ tiebreaks


def test_tiebreak_orders_equal_scores(nearest, now) -> None:
    pool = [tech(name="丙", rating=4.0), tech(name="乙", rating=4.8), tech(name="甲", rating=4.8),
            tech(name="丁", rating=None)]
    ranked = sorted(pool, key=lambda c: nearest.tiebreak_key(ORDER, c, now))
    # rating desc; equal ratings by name asc; a null rating after every other.
    assert [c["name"] for c in ranked] == ["乙", "甲", "丙", "丁"]
    assert nearest.tiebreak_key(ORDER, tech(name="丁", rating=None), now) == ((1, 0), (0, "丁"))


def test_tiebreak_desc_on_non_numbers(make_engine, now) -> None:
    policy = make_engine({"rules/dispatch.rules": """\
        dispatch policy by_name for work_order from technician
          tiebreak technician.name desc
        """}).policy("by_name")
    pool = [tech(name="Alice"), tech(name="Carol"), tech(name="Bob")]
    ranked = sorted(pool, key=lambda c: policy.tiebreak_key(ORDER, c, now))
    assert [c["name"] for c in ranked] == ["Carol", "Bob", "Alice"]


# ------------------------------------------------------------------ offers


def test_accept_window(nearest, anyone, now) -> None:
    assert nearest.accept_within({**ORDER, "priority": "P1"}, now) == timedelta(minutes=5)
    assert nearest.accept_within(ORDER, now) == timedelta(minutes=15)
    assert anyone.accept_within(ORDER, now) is None
    offer = nearest.decl.offer
    assert offer is not None
    assert (offer.strategy, offer.retries, offer.escalate_to_role) == (
        "one_at_a_time", 2, "supervisor")


def test_generated_policy_code_is_one_function(nearest) -> None:
    src = nearest.evaluate.__dispatchflow_source__
    assert src.startswith("def _policy_nearest_")
    assert src.count("return (") == 4  # three requirements and the score


# ------------------------------------------------------------------ shared subexpressions


def test_a_call_shared_by_require_and_score_is_computed_once(make_engine, now) -> None:
    policy = make_engine({"rules/dispatch.rules": """\
        dispatch policy near for work_order from technician
          require distance_km(work_order.location, technician.location) <= 5km as "太远"
          score 10 * (1 - distance_km(work_order.location, technician.location) / 5km)
        """}).policy("near")
    src = policy.evaluate.__dispatchflow_source__
    assert src.count("_f_distance_km(") == 1
    here = {"lat": 31.23, "lng": 121.47}
    order_ = {**ORDER, "location": here}
    near = tech(location={"lat": 31.24, "lng": 121.47})
    far = tech(location={"lat": 31.40, "lng": 121.47})
    failed, score = policy.evaluate(order_, near, now)
    assert failed == -1 and score == pytest.approx(policy.explain(order_, near, now).score)
    assert policy.evaluate(order_, far, now) == (0, None)
    assert policy.evaluate(order_, tech(location=None), now) == (0, None)  # null distance
