"""Tests for dispatchflow.rules.ruleset: salience order, effects, sets seen later, traces."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.errors import EvaluationError
from dispatchflow.rules import effects as fx
from dispatchflow.rules.ruleset import RuleTrace, compile_ruleset

TRIAGE = """\
ruleset triage on work_order.created
rule "漏水优先" salience 10
  when contains_any(work_order.description, ["漏水", "leak"])
       and work_order.priority != "P1"
  then set work_order.priority = "P1"
       tag work_order "urgent"
       notify supervisor_alert
       start flow repair
       request dispatch using nearest
       request dispatch

rule "urgent escalates"
  when work_order.priority == "P1"
  then set work_order.escalated = true
       emit work_order.escalated
       untag work_order "routine"

rule "late check" salience -5
  when work_order.escalated and work_order.parts_count > 2
  then set work_order.response_due = now() + 2h

dispatch policy nearest for work_order from technician
  require technician.on_shift
"""


@pytest.fixture
def triage(make_engine):
    return make_engine({"rules/triage.rules": TRIAGE}).ruleset("triage")


def order(**fields) -> dict:
    base = {"title": "厨房漏水", "description": "厨房水管漏水", "priority": "P3",
            "parts_count": 0, "escalated": False, "tags": []}
    return {**base, **fields}


def test_rules_run_in_salience_order_ties_in_file_order(triage) -> None:
    assert [r.name for r in triage.ordered] == ["漏水优先", "urgent escalates", "late check"]
    assert [r.salience for r in triage.ordered] == [10, 0, -5]


def test_every_action_becomes_an_effect(triage, now) -> None:
    result = triage.run(order(), now)
    assert result.ruleset == "triage"
    assert result.fired == ["漏水优先", "urgent escalates"]
    assert result.effects == [
        fx.SetField("work_order", "priority", "P1", "漏水优先"),
        fx.AddTag("work_order", "urgent", "漏水优先"),
        fx.Notify("supervisor_alert", "漏水优先"),
        fx.StartFlow("repair", "漏水优先"),
        fx.RequestDispatch("nearest", "漏水优先"),
        fx.RequestDispatch(None, "漏水优先"),
        fx.SetField("work_order", "escalated", True, "urgent escalates"),
        fx.EmitEvent("work_order", "escalated", "urgent escalates"),
        fx.RemoveTag("work_order", "routine", "urgent escalates"),
    ]
    assert result.trace is None


def test_a_set_is_seen_by_later_rules(triage, now) -> None:
    # "urgent escalates" reads priority == "P1", which only the first rule made true;
    # "late check" reads escalated, which only the second rule set.
    result = triage.run(order(parts_count=3), now)
    assert result.fired == ["漏水优先", "urgent escalates", "late check"]
    assert result.effects[-1] == fx.SetField("work_order", "response_due",
                                             now + timedelta(hours=2), "late check")


def test_the_record_itself_is_not_changed(triage, now) -> None:
    record = order()
    triage.run(record, now)
    assert record == order()


def test_rules_do_not_refire(make_engine, now) -> None:
    # The first rule reads what the second sets, but it has already run: no chaining.
    engine = make_engine({"rules/triage.rules": """\
        ruleset triage on work_order.created
        rule "reads P1" salience 5
          when work_order.priority == "P1"
          then tag work_order "seen P1"
        rule "sets P1"
          when true
          then set work_order.priority = "P1"
        """})
    result = engine.ruleset("triage").run(order(), now)
    assert result.fired == ["sets P1"]


def test_later_set_wins_for_the_same_field(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset triage on work_order.created
        rule "first" salience 2 when true then set work_order.priority = "P2"
        rule "second" salience 1 when true then set work_order.priority = "P1"
        """})
    effects = engine.ruleset("triage").run(order(), now).effects
    assert [e.value for e in effects] == ["P2", "P1"]


def test_hit_first_stops_after_the_first_rule_that_fires(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset route on work_order.created
          hit first
        rule "电工" salience 3 when work_order.category == "electrical" then tag work_order "电"
        rule "水工" salience 2 when work_order.category == "plumbing" then tag work_order "水"
        rule "兜底" salience 1 when true then tag work_order "其他"
        """})
    route = engine.ruleset("route")
    assert route.run(order(category="plumbing"), now).fired == ["水工"]
    assert route.run(order(category=None), now).fired == ["兜底"]
    traced = route.run(order(category="electrical"), now, trace=True)
    assert traced.fired == ["电工"]
    assert [t.matched for t in traced.trace] == [True, False, False]


def test_hit_all_fires_every_matching_rule(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset tags on work_order.created
        rule "a" when true then tag work_order "a"
        rule "b" when work_order.escalated then tag work_order "b"
        rule "c" when true then tag work_order "c"
        """})
    assert engine.ruleset("tags").run(order(), now).fired == ["a", "c"]


def test_null_condition_does_not_fire(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset warranty on work_order.created
        rule "保修" when work_order.under_warranty then tag work_order "保修"
        rule "收费" when not work_order.under_warranty then tag work_order "收费"
        """})
    rs = engine.ruleset("warranty")
    assert rs.run(order(under_warranty=None), now).fired == ["收费"]
    assert rs.run(order(under_warranty=True), now).fired == ["保修"]


def test_now_is_the_time_passed_in(triage) -> None:
    when = datetime(2026, 10, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    effects = triage.run(order(parts_count=5), when).effects
    assert effects[-1].value == when + timedelta(hours=2)


# ------------------------------------------------------------------ traces


def test_trace_names_the_first_failing_conjunct(triage, now) -> None:
    result = triage.run(order(description="空调不制冷"), now, trace=True)
    assert result.fired == []
    assert result.trace == [
        RuleTrace("漏水优先", False, 'contains_any(work_order.description, ["漏水", "leak"])', 2),
        RuleTrace("urgent escalates", False, 'work_order.priority == "P1"', 12),
        RuleTrace("late check", False, "work_order.escalated", 18),
    ]


def test_trace_of_a_later_conjunct_spanning_lines(triage, now) -> None:
    result = triage.run(order(priority="P1", escalated=True), now, trace=True)
    first, second, third = result.trace
    assert (first.matched, first.failed_condition) == (False, 'work_order.priority != "P1"')
    assert (second.matched, second.failed_condition) == (True, None)
    assert (third.matched, third.failed_condition) == (False, "work_order.parts_count > 2")


def test_traced_and_fast_runs_agree(triage, now) -> None:
    for record in (order(), order(priority="P1"), order(description=None, parts_count=9,
                                                        escalated=True)):
        fast = triage.run(record, now)
        traced = triage.run(record, now, trace=True)
        assert (fast.fired, fast.effects) == (traced.fired, traced.effects)


def test_condition_text_without_source(make_engine) -> None:
    engine = make_engine({"rules/triage.rules": TRIAGE})
    compiled = compile_ruleset(engine.app.rulesets["triage"])  # no source text given
    assert compiled.condition_texts[0] == ["condition at line 3", "condition at line 4"]


# ------------------------------------------------------------------ errors


def test_missing_required_field_raises_evaluation_error(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset titles on work_order.created
        rule "标题含漏水" when work_order.title contains "漏水" then tag work_order "leak"
        """})
    with pytest.raises(EvaluationError) as info:
        engine.ruleset("titles").run({"priority": "P1"}, now)
    err = info.value
    assert err.message.startswith("ruleset titles failed on this record: ")
    assert (err.file, err.line) == ("rules/triage.rules", 1)
    assert err.hint == "check that the record has every required field"
    assert isinstance(err.__cause__, TypeError)


def test_generated_code_is_kept_for_inspection(triage) -> None:
    src = triage._fast.__dispatchflow_source__
    assert src.startswith("def _ruleset_triage_")
    assert "漏水" not in src.replace(repr("漏水"), "")  # literals only through repr/constants


def test_invalid_pattern_from_the_record_raises_evaluation_error(make_engine, now) -> None:
    engine = make_engine({"rules/triage.rules": """\
        ruleset skills on work_order.updated
        rule "按技能匹配" when work_order.title matches work_order.required_skill
          then tag work_order "匹配"
        """})
    with pytest.raises(EvaluationError, match="ruleset skills failed on this record"):
        engine.ruleset("skills").run(order(required_skill="[空调"), now)
