"""Tests for dispatchflow.rules.decision_table: every hit policy, aggregates and errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatchflow.errors import EvaluationError
from dispatchflow.rules.decision_table import AGGREGATES, CompiledTable, TableResult


def table_yaml(hit: str, inputs: list[str], rows: list[str], outputs: list[str],
               extra: str = "") -> str:
    return ("table: t\nentity: work_order\nhit: " + hit + "\n" + extra + "inputs:\n"
            + "".join(f"  - expr: {i}\n" for i in inputs)
            + "outputs:\n" + "".join(f"  - {o}\n" for o in outputs)
            + "rows:\n" + "".join(f"  - {r}\n" for r in rows))


@pytest.fixture
def make_table(compile_ok):
    def make(hit: str, inputs: list[str], rows: list[str], outputs: list[str],
             extra: str = "") -> CompiledTable:
        app = compile_ok({"rules/t.yaml": table_yaml(hit, inputs, rows, outputs, extra)})
        return CompiledTable(app.tables["t"])
    return make


SLA = "{name: respond_within, type: duration}"
TEAM = "{name: team, type: string}"


# ------------------------------------------------------------------ unique


@pytest.fixture
def sla_unique(make_table) -> CompiledTable:
    return make_table("unique", ["work_order.priority", "work_order.customer?.tier"], [
        "[P1, '-', 30m, '\"一线\"']",
        "['P2, P3', vip, 1h, '\"一线\"']",
        "['P2, P3', 'not(vip)', 4h, '\"二线\"']",
    ], [SLA, TEAM])


@pytest.mark.parametrize("priority, customer, outputs, rows", [
    ("P1", None, {"respond_within": timedelta(minutes=30), "team": "一线"}, [1]),
    ("P2", {"tier": "vip"}, {"respond_within": timedelta(hours=1), "team": "一线"}, [2]),
    ("P3", {"tier": "gold"}, {"respond_within": timedelta(hours=4), "team": "二线"}, [3]),
    ("P3", None, {"respond_within": timedelta(hours=4), "team": "二线"}, [3]),
])
def test_unique(sla_unique, now, priority, customer, outputs, rows) -> None:
    result = sla_unique.evaluate({"priority": priority, "customer": customer}, now)
    assert result == TableResult("t", outputs, rows)


def test_unique_violation_raises(make_table, now) -> None:
    # Cells that read a field are not analysed statically, so the overlap shows at run time.
    table = make_table("unique", ["work_order.parts_count"], [
        "['>= work_order.required_level', '\"按级别\"']",
        "['>= 3', '\"批量\"']",
    ], [TEAM])
    assert table.evaluate({"parts_count": 1, "required_level": 2}, now).outputs is None
    with pytest.raises(EvaluationError) as info:
        table.evaluate({"parts_count": 5, "required_level": 2}, now)
    assert info.value.message == "table t (hit unique): rows 1, 2 all match"
    assert info.value.file == "rules/t.yaml"
    assert info.value.hint == "make the rows exclusive (dispatchflow check reports overlaps)"


def test_no_matching_row_gives_none(make_table, now) -> None:
    table = make_table("unique", ["work_order.priority"], ["[P1, 30m]"], [SLA])
    assert table.evaluate({"priority": "P3"}, now) == TableResult("t", None, [])


# ------------------------------------------------------------------ first, any, priority


def test_first_takes_the_first_matching_row(make_table, now) -> None:
    table = make_table("first", ["work_order.parts_count"], [
        "['> 10', '\"仓库直发\"']", "['> 3', '\"批量\"']", "['-', '\"普通\"']"], [TEAM])
    assert table.evaluate({"parts_count": 20}, now) == TableResult("t", {"team": "仓库直发"}, [1])
    assert table.evaluate({"parts_count": 5}, now) == TableResult("t", {"team": "批量"}, [2])
    assert table.evaluate({"parts_count": 0}, now) == TableResult("t", {"team": "普通"}, [3])
    assert table.matching_rows({"parts_count": 20}, now) == [0, 1, 2]


def test_any_with_equal_outputs(make_table, now) -> None:
    table = make_table("any", ["work_order.priority", "work_order.escalated"], [
        "[P1, '-', 30m]", "['-', true, 30m]", "['P2, P3', false, 4h]"], [SLA])
    result = table.evaluate({"priority": "P1", "escalated": True}, now)
    assert result == TableResult("t", {"respond_within": timedelta(minutes=30)}, [1, 2])


def test_any_violation_raises(make_table, now) -> None:
    table = make_table("any", ["work_order.parts_count"], [
        "['>= work_order.required_level', 30m]", "['>= 3', 4h]"], [SLA])
    with pytest.raises(EvaluationError) as info:
        table.evaluate({"parts_count": 5, "required_level": 0}, now)
    assert str(info.value) == ("rules/t.yaml: table t (hit any): rows 1, 2 match with "
                               "different outputs")


@pytest.fixture
def level_priority(make_table) -> CompiledTable:
    return make_table("priority", ["work_order.priority", "work_order.parts_count"], [
        "['-', '> 5', normal, 1]",
        "[P1, '-', critical, 2]",
        "['P1, P2', '-', high, 3]",
    ], ["{name: level, type: string, priority: [critical, high, normal]}",
        "{name: crew, type: number}"])


def test_priority_picks_by_the_priority_list(level_priority, now) -> None:
    # All three rows match; "critical" comes first in the list, and its row's other
    # outputs come with it.
    result = level_priority.evaluate({"priority": "P1", "parts_count": 9}, now)
    assert result == TableResult("t", {"level": "critical", "crew": 2}, [2])
    result = level_priority.evaluate({"priority": "P2", "parts_count": 9}, now)
    assert result == TableResult("t", {"level": "high", "crew": 3}, [3])
    result = level_priority.evaluate({"priority": "P3", "parts_count": 9}, now)
    assert result == TableResult("t", {"level": "normal", "crew": 1}, [1])
    assert level_priority.evaluate({"priority": "P3", "parts_count": 0}, now).outputs is None


# ------------------------------------------------------------------ collect


@pytest.fixture
def surcharges(make_table):
    def make(aggregate: str | None, out: str = "{name: fee, type: number}",
             cells: tuple[str, str, str] = ("100", "50", "20")) -> CompiledTable:
        extra = f"aggregate: {aggregate}\n" if aggregate else ""
        return make_table("collect", ["work_order.escalated", "work_order.parts_count"], [
            f"[true, '-', {cells[0]}]", f"['-', '> 3', {cells[1]}]", f"['-', '> 10', {cells[2]}]",
        ], [out], extra)
    return make


def test_collect_lists_every_matching_row(surcharges, now) -> None:
    table = surcharges(None)
    result = table.evaluate({"escalated": True, "parts_count": 12}, now)
    assert result == TableResult("t", [{"fee": 100}, {"fee": 50}, {"fee": 20}], [1, 2, 3])
    assert table.evaluate({"escalated": False, "parts_count": 0}, now) == TableResult("t", [], [])


@pytest.mark.parametrize("aggregate, all_rows, one_row, no_row", [
    ("sum", 170, 50, 0),
    ("min", 20, 50, None),
    ("max", 100, 50, None),
    ("count", 3, 1, 0),
])
def test_collect_aggregates(surcharges, now, aggregate, all_rows, one_row, no_row) -> None:
    table = surcharges(aggregate)
    assert table.evaluate({"escalated": True, "parts_count": 12}, now).outputs == all_rows
    assert table.evaluate({"escalated": False, "parts_count": 5}, now).outputs == one_row
    result = table.evaluate({"escalated": False, "parts_count": 0}, now)
    assert (result.outputs, result.rows) == (no_row, [])


def test_collect_sum_of_durations(surcharges, now) -> None:
    table = surcharges("sum", SLA.replace("respond_within", "extra"), ("30m", "1h", "2h"))
    assert table.evaluate({"escalated": True, "parts_count": 12}, now).outputs == \
        timedelta(hours=3, minutes=30)
    # Regression: with no matching row the sum of durations was the int 0, so a rule
    # computing ``now() + table.extra`` failed with a TypeError.
    none = table.evaluate({"escalated": False, "parts_count": 0}, now).outputs
    assert none == timedelta(0) and isinstance(none, timedelta)


def test_aggregates_skip_null_outputs(make_table, now) -> None:
    table = make_table("collect", ["work_order.escalated"], [
        "['-', work_order.budget]", "[true, 10]"], ["{name: fee, type: number}"],
        "aggregate: sum\n")
    assert table.evaluate({"escalated": True, "budget": None}, now).outputs == 10
    assert table.evaluate({"escalated": True, "budget": 5.0}, now).outputs == 15.0


def test_aggregate_functions() -> None:
    assert AGGREGATES["sum"]([1, 2, 3]) == 6
    assert AGGREGATES["sum"]([]) == 0
    assert AGGREGATES["min"]([]) is None
    assert AGGREGATES["max"]([timedelta(hours=1), timedelta(hours=2)]) == timedelta(hours=2)
    assert AGGREGATES["count"](["a", "b"]) == 2


# ------------------------------------------------------------------ inputs and outputs


def test_inputs_are_full_expressions(make_table, now) -> None:
    table = make_table("first", ["hours_between(now(), work_order.scheduled_at)"], [
        "['< 2', '\"紧急上门\"']", "['-', '\"正常排期\"']"], [TEAM])
    soon = {"scheduled_at": now + timedelta(minutes=90)}
    later = {"scheduled_at": now + timedelta(hours=5)}
    assert table.evaluate(soon, now).outputs == {"team": "紧急上门"}
    assert table.evaluate(later, now).outputs == {"team": "正常排期"}
    # A null input only matches '-' (and not(...)).
    assert table.evaluate({"scheduled_at": None}, now).outputs == {"team": "正常排期"}


def test_outputs_are_expressions_evaluated_on_the_record(make_table, now) -> None:
    table = make_table("first", ["work_order.priority"], [
        "[P1, 'work_order.parts_count * 10 + 50']", "['-', 0]"], ["{name: fee, type: number}"])
    assert table.evaluate({"priority": "P1", "parts_count": 3}, now).outputs == {"fee": 80}


def test_range_cells_at_run_time(make_table, now) -> None:
    table = make_table("first", ["work_order.budget"], [
        "['[0..500)', '\"小额\"']", "['[500..2000]', '\"中额\"']", "['(2000..100000)', '\"大额\"']",
    ], [TEAM])
    expected = {0.0: "小额", 499.99: "小额", 500.0: "中额", 2000.0: "中额", 2000.01: "大额",
                100000.0: None, -1.0: None, None: None}
    for budget, team in expected.items():
        outputs = table.evaluate({"budget": budget}, now).outputs
        assert (outputs["team"] if outputs else None) == team, budget


def test_bad_record_values_raise_evaluation_error(make_table, now) -> None:
    table = make_table("first", ["work_order.parts_count"], ["['> 3', 1h]", "['-', 2h]"], [SLA])
    with pytest.raises(EvaluationError) as info:
        table.evaluate({"parts_count": "三"}, now)
    assert info.value.message == ("table t failed on this record: '>' not supported between "
                                  "instances of 'str' and 'int'")
    assert info.value.hint == "check the record's field values"
    assert isinstance(info.value.__cause__, TypeError)
