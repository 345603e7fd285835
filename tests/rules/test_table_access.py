"""Rules reading decision-table outputs: lazy locals, invalidation, generic fallback."""

from datetime import timedelta

import pytest

from dispatchflow.rules import effects as fx
from dispatchflow.rules.engine import Engine
from dispatchflow.rules.ruleset import compile_ruleset
from dispatchflow.rules.table_access import GenericTable, LazyTable, fields_read

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

# Reads the table, changes its input, reads it again.
RULES = """\
ruleset sla_clock on work_order.created
rule "初始时限" salience 30
  when true
  then set work_order.estimated_duration = sla.respond_within
rule "漏水升级" salience 20
  when contains_any(work_order.description, ["漏水"])
  then set work_order.priority = "P1"
rule "响应时限" salience 10
  when sla.respond_within < 1h
  then set work_order.response_due = now() + sla.respond_within
"""

CLASS_TABLE = """\
table: service_class
entity: work_order
hit: priority
inputs:
  - expr: work_order.priority
  - expr: work_order.escalated
outputs:
  - {name: class, type: string, priority: [gold, silver, bronze]}
rows:
  - [P1, '-', '"gold"']
  - ['-', true, '"silver"']
  - ['-', '-', '"bronze"']
"""


def order(**fields) -> dict:
    return {"title": "报修", "priority": "P3", "parts_count": 0, "escalated": False,
            "description": "", **fields}


@pytest.fixture
def engine(make_engine) -> Engine:
    return make_engine({"rules/sla.yaml": SLA_TABLE, "rules/sla.rules": RULES,
                        "rules/class.yaml": CLASS_TABLE})


def counting(binding: LazyTable) -> tuple[LazyTable, list]:
    calls: list = []

    def lookup(*args):
        calls.append(args[:-2])
        return binding.lookup(*args)
    return LazyTable(binding.table, lookup, binding.needs_record), calls


def test_unique_table_proven_exclusive_gets_a_lazy_binding(engine) -> None:
    bindings = engine._table_bindings("work_order")
    assert isinstance(bindings["sla"], LazyTable)
    assert isinstance(bindings["service_class"], GenericTable)  # hit priority
    assert fields_read(bindings["sla"].table) == {"priority"}


def test_a_table_is_looked_up_once_and_again_after_its_input_is_set(engine, now) -> None:
    decl = engine.app.rulesets["sla_clock"]
    bindings = engine._table_bindings("work_order")
    bindings["sla"], calls = counting(bindings["sla"])
    compiled = compile_ruleset(decl, None, bindings)

    result = compiled.run(order(), now)  # nothing sets priority: one lookup
    assert calls == [("P3",)]
    assert result.effects == [fx.SetField("work_order", "estimated_duration",
                                          timedelta(hours=8), "初始时限")]

    calls.clear()
    result = compiled.run(order(description="厨房漏水"), now)
    # Looked up for P3, invalidated by the set of priority, looked up again for P1.
    assert calls == [("P3",), ("P1",)]
    assert result.effects[-1] == fx.SetField("work_order", "response_due",
                                             now + timedelta(minutes=30), "响应时限")


def test_the_traced_variant_reads_tables_the_same_way(engine, now) -> None:
    result = engine.ruleset("sla_clock").run(order(description="漏水"), now, trace=True)
    assert result.fired == ["初始时限", "漏水升级", "响应时限"]
    assert result.effects[-1].value == now + timedelta(minutes=30)


def test_generic_binding_for_a_priority_table(make_engine, now) -> None:
    engine = make_engine({"rules/class.yaml": CLASS_TABLE, "rules/c.rules": """\
        ruleset classify on work_order.created
        rule "升级" salience 10 when work_order.priority == "P2" then set work_order.escalated = true
        rule "分级" when service_class.class == "silver" then tag work_order "silver"
        """.replace("        ", "")})
    result = engine.ruleset("classify").run(order(priority="P2"), now)
    # The priority table saw escalated = true (set by the earlier rule).
    assert fx.AddTag("work_order", "silver", "分级") in result.effects
    result = engine.ruleset("classify").run(order(priority="P3"), now)
    assert result.fired == []
