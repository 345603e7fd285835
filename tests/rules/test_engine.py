"""Tests for dispatchflow.rules.engine: events run rule sets in order, tables feed rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatchflow.rules import effects as fx
from dispatchflow.rules.engine import Engine

INTAKE = """\
ruleset classify on work_order.created
rule "漏水是水工" when contains_any(work_order.description, ["漏水", "水管"])
  then set work_order.category = "plumbing"
rule "电路是电工" when contains_any(work_order.description, ["跳闸", "漏电"])
  then set work_order.category = "electrical"

ruleset prioritise on work_order.created
  hit first
rule "漏电最急" salience 10
  when work_order.category == "electrical" and contains_any(work_order.description, ["漏电"])
  then set work_order.priority = "P1"
       tag work_order "安全隐患"
rule "水工次之" salience 5
  when work_order.category == "plumbing"
  then set work_order.priority = "P2"
rule "兜底"
  when true
  then tag work_order "已分诊"

ruleset closing on work_order.closed
rule "归档" when true then emit work_order.archived
"""

ESCALATE = """\
ruleset escalate on work_order.created
rule "P1 升级"
  when work_order.priority == "P1" and work_order.parts_count > 2
  then set work_order.escalated = true
       notify supervisor_alert
"""


@pytest.fixture
def engine(make_engine) -> Engine:
    return make_engine({"rules/intake.rules": INTAKE, "rules/zz_escalate.rules": ESCALATE})


def order(**fields) -> dict:
    return {"title": "报修", "priority": "P3", "parts_count": 0, "escalated": False,
            "description": "", "category": None, **fields}


def test_rule_sets_of_an_event_run_in_file_order(engine) -> None:
    assert [rs.name for rs in engine.app.rulesets_for("work_order", "created")] == [
        "classify", "prioritise", "escalate"]
    assert [rs.name for rs in engine.app.rulesets_for("work_order", "closed")] == ["closing"]
    assert engine.app.rulesets_for("technician", "created") == []


def test_later_rule_sets_see_earlier_sets(engine, now) -> None:
    results = engine.run_event("work_order", "created",
                               order(description="插座漏电，总闸跳闸", parts_count=3), now)
    assert [(r.ruleset, r.fired) for r in results] == [
        ("classify", ["电路是电工"]),
        ("prioritise", ["漏电最急"]),  # saw category = electrical; hit first stopped here
        ("escalate", ["P1 升级"]),  # saw priority = P1 set by the previous rule set
    ]
    effects = [e for r in results for e in r.effects]
    assert effects == [
        fx.SetField("work_order", "category", "electrical", "电路是电工"),
        fx.SetField("work_order", "priority", "P1", "漏电最急"),
        fx.AddTag("work_order", "安全隐患", "漏电最急"),
        fx.SetField("work_order", "escalated", True, "P1 升级"),
        fx.Notify("supervisor_alert", "P1 升级"),
    ]


def test_hit_first_falls_through_to_the_default(engine, now) -> None:
    results = engine.run_event("work_order", "created", order(description="空调不制冷"), now)
    assert [r.fired for r in results] == [[], ["兜底"], []]


def test_the_callers_record_is_not_modified(engine, now) -> None:
    record = order(description="水管漏水")
    engine.run_event("work_order", "created", record, now)
    assert record == order(description="水管漏水")


def test_trace_reports_the_failing_conjunct(engine, now) -> None:
    results = engine.run_event("work_order", "created",
                               order(description="插座漏电", parts_count=1), now, trace=True)
    escalate = results[2].trace
    assert escalate is not None
    (rule,) = escalate
    assert (rule.rule, rule.matched, rule.failed_condition, rule.line) == (
        "P1 升级", False, "work_order.parts_count > 2", 2)
    classify = results[0].trace
    assert [(t.rule, t.matched, t.failed_condition) for t in classify] == [
        ("漏水是水工", False, 'contains_any(work_order.description, ["漏水", "水管"])'),
        ("电路是电工", True, None),
    ]


def test_events_without_rule_sets_do_nothing(engine, now) -> None:
    assert engine.run_event("work_order", "assigned", order(), now) == []


def test_compiled_items_are_cached(engine) -> None:
    first = engine.ruleset("classify")
    assert engine.ruleset("classify") is first
    engine.compile_all()
    assert set(engine._rulesets) == {"classify", "prioritise", "closing", "escalate"}
    with pytest.raises(KeyError):
        engine.ruleset("no_such_ruleset")


# ------------------------------------------------------------------ tables read by rules

SLA_TABLE = """\
table: sla
entity: work_order
hit: unique
inputs:
  - expr: work_order.priority
outputs:
  - {name: respond_within, type: duration}
rows:
  - [P1, 30m]
  - [P2, 2h]
  - [P3, 8h]
"""

SLA_RULES = """\
ruleset sla_clock on work_order.created
rule "漏水升级" salience 10
  when contains_any(work_order.description, ["漏水"])
  then set work_order.priority = "P1"
rule "响应时限"
  when true
  then set work_order.response_due = now() + sla.respond_within
"""


def test_rules_read_table_outputs_on_the_record_as_set_so_far(make_engine, now) -> None:
    engine = make_engine({"rules/sla.yaml": SLA_TABLE, "rules/sla.rules": SLA_RULES})
    effects = engine.ruleset("sla_clock").run(order(description="厨房漏水"), now).effects
    # The table saw priority P1 (set by the earlier rule), not the record's P3.
    assert effects[-1] == fx.SetField("work_order", "response_due", now + timedelta(minutes=30),
                                      "响应时限")
    effects = engine.ruleset("sla_clock").run(order(priority="P2"), now).effects
    assert effects == [fx.SetField("work_order", "response_due", now + timedelta(hours=2),
                                   "响应时限")]


def test_table_outputs_and_evaluate_table(make_engine, now) -> None:
    engine = make_engine({"rules/sla.yaml": SLA_TABLE})
    assert engine.table_outputs("sla", {"priority": "P2"}, now) == {
        "respond_within": timedelta(hours=2)}
    result = engine.evaluate_table("sla", {"priority": "P3"}, now)
    assert (result.outputs, result.rows) == ({"respond_within": timedelta(hours=8)}, [3])
    assert engine.table("sla") is engine.table("sla")


def test_aggregate_table_outputs_are_wrapped_by_name(make_engine, now) -> None:
    engine = make_engine({"rules/fees.yaml": """\
        table: fees
        entity: work_order
        hit: collect
        aggregate: sum
        inputs:
          - expr: work_order.parts_count
        outputs:
          - {name: fee, type: number}
        rows:
          - ['> 0', 50]
          - ['> 5', 100]
        """})
    assert engine.table_outputs("fees", {"parts_count": 6}, now) == {"fee": 150}
    assert engine.table_outputs("fees", {"parts_count": 0}, now) == {"fee": 0}
