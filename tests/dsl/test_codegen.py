"""Tests for dispatchflow.dsl.codegen: compiled expressions compute the documented values.

Null semantics (codegen.py's docstring): a comparison with a null operand is
false; arithmetic with null gives null; in a boolean position null counts as
false; division or modulo by zero gives null.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.dsl import ast
from dispatchflow.dsl.codegen import compile_expression, root_param
from dispatchflow.dsl.source import Span

SHANGHAI = ZoneInfo("Asia/Shanghai")

# ------------------------------------------------------------------ plain values


@pytest.mark.parametrize("source, expected", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("7 / 2", 3.5),
    ("7 % 3", 1),
    ("-7 % 3", 2),
    ("2.5e1", 25.0),
    ('"工单" + "-" + "001"', "工单-001"),
    ("15m + 2h", timedelta(minutes=135)),
    ("2h * 1.5", timedelta(hours=3)),
    ("2h / 30m", 4.0),
    ("-15m", timedelta(minutes=-15)),
    ("5km * 2", 10.0),
    ("10km / 4km", 2.5),
    ("[1, 2, 3]", [1, 2, 3]),
    ('if 1 > 2 then "甲" else "乙"', "乙"),
    ("if true then if false then 1 else 2 else 3", 2),
    ("not (1 > 2)", True),
    ("1 < 2 and 2 < 3", True),
    ("1 > 2 or 2 > 3", False),
    ('"P1" in ["P1", "P2"]', True),
    ('"P3" not in ["P1", "P2"]', True),
    ('"漏水" in "厨房水管漏水"', True),
    ('"厨房漏水" contains "漏水"', True),
    (r'"WO-2026-0001" matches "^WO-\\d{4}-\\d+$"', True),
    ('"wo-1" matches "^WO"', False),
    ("15m < 1h", True),
    ("1w == 7d", True),
    ("min(3, 1, 2)", 1),
    ("max(15m, 2h)", timedelta(hours=2)),
    ("round(2.5)", 3.0),
    ("round(-2.5)", -3.0),
    ("round(3.14159, 2)", 3.14),
    ("abs(-2h)", timedelta(hours=2)),
    ('len("空调不制冷")', 5),
    ('lower("HVAC")', "hvac"),
    ('upper("hvac")', "HVAC"),
    ('trim("  漏水 ")', "漏水"),
    ('starts_with("WO-1", "WO")', True),
    ('ends_with("WO-1", "WO")', False),
    ("in_minutes(2h)", 120.0),
    ("in_hours(90m)", 1.5),
    ("minutes(90) == 90m", True),
    ("hours(1.5)", timedelta(minutes=90)),
    ("days(1) == 1d", True),
    ("km(3) == 3km", True),
    ('contains_any("厨房水管 LEAK", ["leak", "漏电"])', True),
    ('contains_any("空调不制冷", ["漏水"])', False),
    ('contains_all("空调漏水，不制冷", ["漏水", "制冷"])', True),
    ('contains_all("空调漏水", ["漏水", "制冷"])', False),
])
def test_values(evaluate, source: str, expected: object) -> None:
    value = evaluate(source)
    assert value == expected
    assert type(value) is type(expected)


def test_record_fields(evaluate) -> None:
    order = {"title": "厨房漏水", "priority": "P1", "parts_count": 3, "budget": 250.0,
             "customer": {"name": "张三", "tier": "vip"}}
    assert evaluate("work_order.parts_count * work_order.budget", order) == 750.0
    assert evaluate('work_order.customer.tier == "vip"', order) is True
    assert evaluate('work_order.customer?.tier == "vip"', order) is True
    assert evaluate("work_order.customer.name + '先生'", order) == "张三先生"
    assert evaluate('work_order.priority in ["P1", "P2"]', order) is True
    assert evaluate('"漏水" in work_order.title', order) is True


def test_lists_from_records(evaluate) -> None:
    tech = {"skills": ["空调", "电工"], "name": "李师傅", "level": 3}
    assert evaluate('"空调" in technician.skills', technician=tech) is True
    assert evaluate('technician.skills contains "水工"', technician=tech) is False
    assert evaluate("len(technician.skills)", technician=tech) == 2
    assert evaluate('contains_any(technician.skills, ["电工"])', technician=tech) is True
    assert evaluate('contains_any(work_order.title, technician.skills)',
                    {"title": "空调不制冷"}, tech) is True


def test_contains_any_with_literal_words_is_case_insensitive(evaluate) -> None:
    assert evaluate('contains_any(work_order.description, ["LEAK", "漏水"])',
                    {"description": "Kitchen pipe leak"}) is True
    assert evaluate('contains_any(work_order.title, ["LEAK"])', {"title": "A Leak"}) is True
    assert evaluate('contains_any(work_order.description, ["LEAK"])',
                    {"description": None}) is False


def test_reference_equality_compares_ids(evaluate) -> None:
    # A reference may hold the resolved record (a dict) or just its id.
    same = "work_order.customer == work_order.customer"
    assert evaluate(same, {"customer": {"id": 7, "name": "张三"}}) is True
    assert evaluate(same, {"customer": 7}) is True
    assert evaluate(same, {"customer": None}) is False  # null compares false


def test_distance_between_geo_points(evaluate) -> None:
    one_degree = evaluate("distance_km(work_order.location, technician.location)",
                          {"location": {"lat": 0.0, "lng": 121.0}},
                          {"location": {"lat": 1.0, "lng": 121.0}})
    assert one_degree == pytest.approx(111.195, abs=0.01)
    assert evaluate("distance_km(work_order.location, technician.location) < 5km",
                    {"location": {"lat": 31.2304, "lng": 121.4737}},
                    {"location": [31.2397, 121.4998]}) is True


# ------------------------------------------------------------------ null semantics


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_with_null_is_false(evaluate, op: str) -> None:
    assert evaluate(f"work_order.budget {op} 100", {"budget": None}) is False
    assert evaluate(f"100 {op} work_order.budget", {"budget": None}) is False
    assert evaluate(f"work_order.budget {op} work_order.budget", {"budget": None}) is False
    assert evaluate(f"work_order.budget {op} 100", {"budget": 100.0}) is (op in ("==", "<=", ">="))


def test_membership_with_null_is_false(evaluate) -> None:
    assert evaluate("work_order.budget in [100, 200]", {"budget": None}) is False
    assert evaluate("work_order.budget not in [100, 200]", {"budget": None}) is False
    assert evaluate('"空调" in technician.skills', technician={"skills": None}) is False
    assert evaluate('technician.skills contains "空调"', technician={"skills": None}) is False
    assert evaluate('work_order.required_skill matches "^电"', {"required_skill": None}) is False


def test_null_in_a_list_holding_null_is_still_false(evaluate) -> None:
    # Regression: ``x in [..., null]`` and ``x in [1, x]`` were true for a null x,
    # contradicting "a comparison with a null operand is false" (codegen._Compare
    # skipped the null guard for ``in``).
    assert evaluate("work_order.budget in [100, null]", {"budget": None}) is False
    assert evaluate("work_order.budget in [100, work_order.budget]", {"budget": None}) is False
    assert evaluate("work_order.budget in [100, work_order.budget]", {"budget": 5.0}) is True


@pytest.mark.parametrize("source", [
    "work_order.budget + 1", "1 - work_order.budget", "work_order.budget * 2",
    "work_order.budget / 2", "work_order.budget % 2", "-work_order.budget",
    "work_order.scheduled_at + 2h", "now() - work_order.scheduled_at",
    "work_order.estimated_duration * 2", "round(work_order.budget)",
    "max(work_order.budget, 3)", "lower(work_order.required_skill)",
    "in_minutes(work_order.estimated_duration)", "work_order.customer.tier",
    "distance_km(work_order.location, technician.location)",
])
def test_arithmetic_and_functions_with_null_give_null(evaluate, source: str) -> None:
    assert evaluate(source, {"budget": None, "scheduled_at": None,
                             "estimated_duration": None, "required_skill": None,
                             "customer": None, "location": None},
                    {"location": {"lat": 31.2, "lng": 121.4}}) is None


def test_null_in_a_boolean_position_is_false(evaluate) -> None:
    order = {"under_warranty": None}
    assert evaluate("work_order.under_warranty", order, boolean=True) is False
    assert evaluate("not work_order.under_warranty", order) is True
    assert evaluate("work_order.under_warranty or false", order) is False
    assert evaluate("work_order.under_warranty and true", order) is False
    assert evaluate('if work_order.under_warranty then "保修" else "收费"', order) == "收费"
    assert evaluate('if work_order.under_warranty then "保修" else "收费"',
                    {"under_warranty": True}) == "保修"
    assert evaluate("work_order.under_warranty", {"under_warranty": True}, boolean=True) is True


def test_a_value_position_keeps_the_null(evaluate) -> None:
    assert evaluate("work_order.under_warranty", {"under_warranty": None}) is None


@pytest.mark.parametrize("source", ["10 / 0", "10 % 0", "10 / (2 - 2)", "2h / 0",
                                    "technician.open_orders / technician.level",
                                    "work_order.budget / 0"])
def test_division_by_zero_gives_null(evaluate, source: str) -> None:
    assert evaluate(source, {"budget": 300.0}, {"open_orders": 4, "level": 0}) is None


def test_division_by_a_nonzero_field(evaluate) -> None:
    assert evaluate("technician.open_orders / technician.level", None,
                    {"open_orders": 4, "level": 2}) == 2.0


def test_is_null_and_coalesce(evaluate) -> None:
    assert evaluate("work_order.budget is null", {"budget": None}) is True
    assert evaluate("work_order.budget is not null", {"budget": 0.0}) is True
    assert evaluate("work_order.budget is null", {}) is True  # a missing key reads as null
    assert evaluate("coalesce(work_order.budget, work_order.required_level, 0)",
                    {"budget": None, "required_level": 2}) == 2
    assert evaluate("coalesce(work_order.budget, 0)", {"budget": 0.0}) == 0.0
    assert evaluate("work_order.customer?.tier", {"customer": None}) is None


# ------------------------------------------------------------------ time


def test_now_is_the_injected_time(evaluate, now) -> None:
    assert evaluate("now()") == now == datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
    other = datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI)
    assert evaluate("now()", at=other) == other
    assert evaluate("hour_of(now())", at=other) == 23


def test_datetime_and_duration_arithmetic(evaluate) -> None:
    scheduled = datetime(2026, 3, 2, 14, 30, tzinfo=SHANGHAI)
    order = {"scheduled_at": scheduled, "estimated_duration": timedelta(minutes=90)}
    assert evaluate("work_order.scheduled_at - now()", order) == timedelta(hours=4, minutes=30)
    assert evaluate("work_order.scheduled_at + work_order.estimated_duration", order) == \
        datetime(2026, 3, 2, 16, 0, tzinfo=SHANGHAI)
    assert evaluate("work_order.scheduled_at - 1d", order) == \
        datetime(2026, 3, 1, 14, 30, tzinfo=SHANGHAI)
    assert evaluate("now() + 2h > work_order.scheduled_at", order) is False
    assert evaluate("now() + 1w", order) == datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)
    assert evaluate("hours_between(now(), work_order.scheduled_at)", order) == 4.5
    assert evaluate("minutes_between(work_order.scheduled_at, now())", order) == -270.0
    assert evaluate("days_between(now(), now() + 36h)", order) == 1.5
    assert evaluate("weekday(now())", order) == 1  # 2 March 2026 is a Monday
    assert evaluate("date_of(work_order.scheduled_at)", order) == scheduled.date()
    assert evaluate("in_minutes(work_order.estimated_duration) / 30", order) == 3.0


# ------------------------------------------------------------------ safety


PAYLOADS = [
    "__import__('os').system('x')",
    "\"); __import__('os').system('x') #",
    "'''; __import__('os').system('x'); '''",
    "{__import__('os').system('x')}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_string_literals_are_data_not_code(check_expr, now, payload: str) -> None:
    escaped = payload.replace("\\", "\\\\").replace('"', '\\"')
    for source in (f'"{escaped}"', f'work_order.title == "{escaped}"',
                   f'contains_any(work_order.title, ["{escaped}"])',
                   f'if work_order.escalated then "{escaped}" else "安全"'):
        checked = check_expr(source)
        assert checked.errors == [], source
        fn = compile_expression(checked.node, ["work_order", "technician"])
        generated = fn.__dispatchflow_source__
        # Outside its repr the payload's code never appears in the generated source.
        outside = generated.replace(repr(payload), "")
        assert "__import__" not in outside, generated
        assert len(generated.splitlines()) == 2  # def line and one return line
        result = fn({"title": payload, "escalated": True}, {}, now)
        assert result in (payload, True), source


def test_a_string_literal_evaluates_to_its_text(evaluate) -> None:
    assert evaluate('"__import__(\'os\').system(\'x\')"') == "__import__('os').system('x')"
    assert evaluate(r'"line1\nimport os"') == "line1\nimport os"


def test_compiled_functions_have_restricted_builtins(check_expr) -> None:
    fn = compile_expression(check_expr("len(work_order.title)").node,
                            ["work_order", "technician"])
    builtins = fn.__globals__["__builtins__"]
    assert isinstance(builtins, dict)
    for name in ("__import__", "open", "eval", "exec", "compile", "getattr", "setattr",
                 "globals", "vars", "type", "object", "print", "input", "breakpoint"):
        assert name not in builtins, name
    assert set(builtins) <= {"len", "min", "max", "abs", "bool", "any", "all", "dict", "list",
                             "tuple", "frozenset", "isinstance", "None", "True", "False"}


def test_generated_code_cannot_reach_import(check_expr) -> None:
    fn = compile_expression(check_expr("1").node, ["work_order", "technician"])
    code = compile("__import__('os')", "<probe>", "eval")
    with pytest.raises(NameError):
        eval(code, fn.__globals__)  # noqa: S307 - probing the sandboxed namespace on purpose


def test_field_names_reach_the_source_only_through_repr(check_expr) -> None:
    fn = compile_expression(check_expr("work_order.customer?.tier").node,
                            ["work_order", "technician"])
    src = fn.__dispatchflow_source__
    assert "get('customer')" in src and "get('tier')" in src
    assert re.search(r"\btier\b", src.replace("'tier'", "")) is None
    assert root_param("work_order") == "r_work_order"


def test_boolean_flag_applies_null_as_false(check_expr, now) -> None:
    node = check_expr("work_order.under_warranty").node
    as_value = compile_expression(node, ["work_order", "technician"])
    as_condition = compile_expression(node, ["work_order", "technician"], boolean=True)
    assert as_value({"under_warranty": None}, {}, now) is None
    assert as_condition({"under_warranty": None}, {}, now) is False


def test_durations_go_through_the_constants_table(now) -> None:
    # A timedelta has no Python literal form; it is passed in as a constant.
    node = ast.Literal(Span(1, 1, 1, 4), kind="duration", value=timedelta(minutes=15))
    fn = compile_expression(node, [])
    assert fn(now) == timedelta(minutes=15)
    assert "timedelta" not in fn.__dispatchflow_source__


@pytest.mark.parametrize("source, expected", [
    ('"工单" is null', False), ("0 is not null", True), ("null is null", True),
    ("(if work_order.escalated then 1 else null) is null", True),
])
def test_is_null_on_a_literal_compiles_without_a_warning(evaluate, source: str,
                                                         expected: bool) -> None:
    # Regression: ``0 is null`` generated ``(0 is None)``, which CPython compiles with
    # "SyntaxWarning: 'is' with a literal" (an error under -W error).
    assert evaluate(source, {"escalated": False}) is expected
