"""Tests for dispatchflow.dsl.checker: types, units, enums, names, nulls.

Expressions are checked against the ``scope`` fixture (roots ``work_order`` and
``technician``; see tests/conftest.py for the fields).
"""

from __future__ import annotations

import pytest

from dispatchflow.dsl import ast
from dispatchflow.dsl import types as T
from dispatchflow.dsl.model import field_type

# ------------------------------------------------------------------ result types


@pytest.mark.parametrize("source, expected", [
    ("1 + 2", "number"),
    ('"工单" + "编号"', "string"),
    ("15m + 2h", "duration"),
    ("5km * 2", "distance"),
    ("2 * 5km", "distance"),
    ("10km / 2km", "number"),
    ("2h / 30m", "number"),
    ("2h / 2", "duration"),
    ("now()", "datetime"),
    ("now() + 2h", "datetime"),
    ("now() - work_order.scheduled_at", "duration (nullable)"),
    ("work_order.scheduled_at - 1d", "datetime (nullable)"),
    ("work_order.estimated_duration * 2", "duration (nullable)"),
    ("work_order.budget + 1", "number (nullable)"),
    ("work_order.parts_count + 1", "number"),
    ("technician.skills", "list of string (nullable)"),
    ("[1, 2]", "list of number"),
    ("work_order.customer", "customer record (nullable)"),
    ("work_order.priority", "enum (P1, P2, P3)"),
    ("work_order.customer.tier", "enum (vip, gold, standard) (nullable)"),
    ("work_order.budget > 3", "bool"),
    ("work_order.budget is null", "bool"),
    ("distance_km(work_order.location, technician.location)", "distance (nullable)"),
    ("coalesce(work_order.budget, 0)", "number"),
    ("if work_order.escalated then 1 else 2", "number"),
    ("if work_order.escalated then work_order.budget else 0", "number (nullable)"),
    ("if work_order.escalated then null else 2h", "duration (nullable)"),
    ("minutes(30)", "duration"),
    ("in_hours(work_order.estimated_duration)", "number (nullable)"),
    ("work_order.id", "number"),
    ("work_order.created_by", "string (nullable)"),
])
def test_result_types(check_expr, source: str, expected: str) -> None:
    checked = check_expr(source)
    assert checked.diagnostics == []
    assert str(checked.type) == expected


def test_every_node_gets_a_type(check_expr) -> None:
    checked = check_expr('if work_order.budget > 3 and not work_order.escalated '
                         'then [lower(work_order.title)] else ["空调"]')
    seen = []

    def walk(node: ast.Expr) -> None:
        seen.append(node)
        assert node.type is not None, node
        for child in ast.children(node):
            walk(child)
    walk(checked.node)
    assert len(seen) == 12


def test_division_is_nullable_but_acknowledged(check_expr) -> None:
    # Division by zero gives null; a ratio must not warn everywhere it is used.
    t = check_expr("technician.open_orders / technician.level").type
    assert t is not None and t.nullable and t.null_ok
    t = check_expr("technician.open_orders / 2").type
    assert t is not None and not t.nullable


# ------------------------------------------------------------------ units


def test_duration_compared_with_a_number(check_expr) -> None:
    d = check_expr("work_order.estimated_duration > 30").only()
    assert (d.code, d.message) == ("E3012", "cannot compare duration with number")
    assert d.hint == "write the number with a unit: 30m, 2h, 1d"
    assert (d.line, d.column, d.end_column) == (1, 1, 35)


def test_duration_plus_a_number(check_expr) -> None:
    # datetime + number: a unit problem too, with the hint to add a duration.
    d = check_expr("now() + 30").only()
    assert (d.code, d.message, d.hint) == ("E3012", "cannot apply '+' to datetime and number",
                                           "add or subtract a duration: 30m, 2h, 1d")
    d = check_expr("work_order.estimated_duration + 30").only()
    assert (d.code, d.message, d.hint) == (
        "E3012", "cannot apply '+' to duration and number",
        "write the number with a unit: 30m, 2h, 1d")


def test_distance_compared_with_a_number(check_expr) -> None:
    d = check_expr("distance_km(work_order.location, technician.location) < 5").only()
    assert (d.code, d.message, d.hint) == (
        "E3012", "cannot compare distance with number", "write the number with a unit: 5km")
    assert check_expr("distance_km(work_order.location, technician.location) < 5km"
                      ).diagnostics == []


def test_distance_minus_a_number(check_expr) -> None:
    d = check_expr("5km - 1").only()
    assert (d.code, d.hint) == ("E3012", "write the number with a unit: 5km")


def test_value_of_the_wrong_unit(check_expr) -> None:
    d = check_expr("90", expected=T.T_DURATION, what="the accept window").only()
    assert (d.code, d.message, d.hint) == (
        "E3012", "the accept window must be a duration, got a number",
        "write the number with a unit: 30m, 2h, 1d")
    d = check_expr('"两小时"', expected=T.T_DURATION, what="the accept window").only()
    assert (d.code, d.message, d.hint) == (
        "E3021", "the accept window must be a duration, got a string", None)


def test_other_operand_mismatches(check_expr) -> None:
    assert check_expr("work_order.title + 1").only().message == \
        "cannot apply '+' to string and number"
    assert check_expr('-"a"').only().message == "cannot negate string"
    assert check_expr("work_order.title < 3").only().message == \
        "cannot compare string with number using '<'"
    assert check_expr("work_order.escalated < true").only().message == \
        "cannot order bool values with '<'"
    assert {d.code for d in check_expr("work_order.location + 5km").diagnostics} == {"E3010"}


# ------------------------------------------------------------------ enums


def test_enum_literal_with_did_you_mean(check_expr) -> None:
    d = check_expr('work_order.priority == "p1"').only()
    assert (d.code, d.message, d.hint) == (
        "E3011", "'p1' is not a value of work_order.priority (P1, P2, P3)", "did you mean 'P1'?")
    assert (d.column, d.end_column) == (24, 28)  # the literal, not the whole comparison


def test_enum_literal_on_the_left_and_in_lists(check_expr) -> None:
    d = check_expr('"VIP" == work_order.customer.tier').only()
    assert (d.code, d.hint) == ("E3011", "did you mean 'vip'?")
    d = check_expr('work_order.priority in ["P1", "P4"]').only()
    assert (d.code, d.column) == ("E3011", 31)
    assert d.message == "'P4' is not a value of work_order.priority (P1, P2, P3)"


def test_enum_literal_with_nothing_close_lists_the_values(check_expr) -> None:
    d = check_expr('work_order.category == "木工"').only()
    assert d.hint == "allowed: 'electrical', 'hvac' or 'plumbing'"


def test_enum_values_are_accepted(check_expr) -> None:
    assert check_expr('work_order.priority == "P1"').diagnostics == []
    assert check_expr('work_order.customer?.tier in ["vip", "gold"]').diagnostics == []
    assert check_expr('work_order.priority != work_order.customer.tier').diagnostics == []


def test_enum_value_assigned_to_an_enum_field(check_expr, entities) -> None:
    target = field_type(entities["work_order"].fields["priority"])
    d = check_expr('"P5"', expected=target, what="work_order.priority").only()
    assert (d.code, d.message) == (
        "E3011", "'P5' is not a value of work_order.priority (P1, P2, P3)")
    assert check_expr('"P2"', expected=target).diagnostics == []


# ------------------------------------------------------------------ names and fields


def test_unknown_field_with_did_you_mean(check_expr) -> None:
    d = check_expr("work_order.priorty").only()
    assert (d.code, d.message, d.hint) == (
        "E3001", "unknown field 'priorty' on work_order", "did you mean 'priority'?")
    assert (d.column, d.end_column) == (12, 19)


def test_unknown_field_through_a_reference(check_expr) -> None:
    d = check_expr('work_order.customer.tire == "vip"').only()
    assert (d.code, d.message, d.hint) == (
        "E3001", "unknown field 'tire' on customer", "did you mean 'tier'?")
    assert (d.column, d.end_column) == (21, 25)


def test_unknown_field_with_nothing_close_lists_the_fields(check_expr) -> None:
    d = check_expr("work_order.customer.revenue").only()
    assert d.hint == ("customer has: 'blacklisted', 'city', 'created_at', 'created_by', 'id', "
                      "'name', 'phone', 'tags', 'tier' or 'updated_at'")


def test_field_of_a_non_record(check_expr) -> None:
    d = check_expr("work_order.title.length").only()
    assert (d.code, d.message, d.column) == ("E3001", "'length': string has no fields", 18)


def test_unknown_root_name(check_expr) -> None:
    d = check_expr('priority == "P1"').only()
    assert (d.code, d.message, d.hint) == (
        "E3002", "unknown name 'priority'",
        "fields are reached through their record: write work_order.priority")
    d = check_expr("work_ordr.budget").only()
    assert (d.code, d.hint) == ("E3002", "did you mean 'work_order'?")
    d = check_expr("customer.tier").only()
    assert d.hint == "fields are reached through their record: write work_order.customer"
    d = check_expr("site.name").only()
    assert d.hint == "names available here: 'technician' or 'work_order'"


def test_one_mistake_is_reported_once(check_expr) -> None:
    checked = check_expr("work_order.priorty == 1 and (work_order.priorty + 2) * 3 > 0")
    assert checked.codes == ["E3001", "E3001"]
    assert checked.type is not None and checked.type.is_error


# ------------------------------------------------------------------ functions


def test_unknown_function(check_expr) -> None:
    d = check_expr('contains_ani(work_order.title, ["漏水"])').only()
    assert (d.code, d.message, d.hint) == (
        "E3003", "unknown function 'contains_ani'", "did you mean 'contains_any' or 'contains_all'?")
    assert (d.column, d.end_column) == (1, 13)
    assert check_expr("frobnicate(1)").only().hint == "see docs/dsl.md for the builtin functions"


def test_wrong_number_of_arguments(check_expr) -> None:
    d = check_expr("round(1, 2, 3)").only()
    assert (d.code, d.message, d.hint) == (
        "E3004", "round() takes 1 to 2 arguments, got 3",
        "signature: round(x: number, digits: number = 0) -> number")
    assert check_expr("now(1)").only().message == "now() takes no arguments"
    assert check_expr("coalesce(1)").only().message == \
        "coalesce() takes at least 2 arguments, got 1"


def test_argument_of_the_wrong_type(check_expr) -> None:
    d = check_expr("lower(work_order.parts_count)").only()
    assert (d.code, d.message, d.hint) == (
        "E3005", "lower() argument 1 must be string, got number",
        "signature: lower(s: string) -> string")
    d = check_expr("max(1, 2h)").only()
    assert (d.code, d.message) == ("E3005", "max() argument 2 is duration, expected number "
                                            "like argument 1")
    d = check_expr('coalesce(work_order.budget, "无")').only()
    assert d.message == "coalesce() argument 2 is string, which does not match number (nullable)"


def test_arguments_that_failed_are_not_reported_again(check_expr) -> None:
    assert check_expr("lower(work_order.titel)").codes == ["E3001"]


# ------------------------------------------------------------------ null


@pytest.mark.parametrize("source", ["work_order.budget == null", "null != work_order.budget",
                                    "work_order.scheduled_at < null"])
def test_comparison_with_the_null_literal(check_expr, source: str) -> None:
    d = check_expr(source).only()
    assert d.code == "E3014"
    assert d.message.startswith("comparison '") and d.message.endswith(
        "' with null is always false")
    assert d.hint == "use 'is null' or 'is not null' to test for a missing value"
    assert (d.column, d.end_column) == (1, len(source) + 1)


def test_is_null_is_the_way_to_test_for_null(check_expr) -> None:
    assert check_expr("work_order.budget is null").diagnostics == []
    assert check_expr("work_order.budget is not null").diagnostics == []


def test_arithmetic_with_the_null_literal(check_expr) -> None:
    d = check_expr("null + 1").only()
    assert (d.code, d.message, d.hint) == ("E3010", "'+' with null is always null",
                                           "use coalesce(value, default) to supply a value")


def test_nullable_condition_warns(check_expr) -> None:
    d = check_expr("work_order.under_warranty", condition=True).only()
    assert (d.code, d.severity.value, d.message, d.hint) == (
        "W4001", "warning", "a condition may be null; null counts as false",
        "make it explicit: compare with '== true' or use coalesce(..., false)")


def test_nullable_through_a_reference_warns(check_expr) -> None:
    # customer is optional, so customer.blacklisted may be null although it is required.
    assert check_expr("work_order.customer.blacklisted", condition=True).codes == ["W4001"]


@pytest.mark.parametrize("source", [
    "work_order.customer?.blacklisted",
    "coalesce(work_order.under_warranty, false)",
    "work_order.under_warranty == true",
    "work_order.escalated",
    "work_order.under_warranty is not null",
])
def test_nullable_warning_is_silenced(check_expr, source: str) -> None:
    assert check_expr(source, condition=True).diagnostics == []


def test_safe_step_acknowledges_null_only_from_there_on(check_expr) -> None:
    plain = check_expr("work_order.customer.tier").type
    safe = check_expr("work_order.customer?.tier").type
    assert plain is not None and plain.nullable and not plain.null_ok
    assert safe is not None and safe.nullable and safe.null_ok


def test_nullable_value_assigned_to_a_required_field_warns(check_expr) -> None:
    required_number = T.T_NUMBER
    d = check_expr("work_order.required_level", expected=required_number,
                   what="work_order.parts_count").only()
    assert (d.code, d.message, d.hint) == (
        "W4001", "work_order.parts_count may be null",
        "give a fallback with coalesce(value, default)")
    assert check_expr("coalesce(work_order.required_level, 0)",
                      expected=required_number).diagnostics == []
    d = check_expr("null", expected=required_number, what="work_order.parts_count").only()
    assert (d.code, d.message) == ("E3021", "work_order.parts_count cannot be null")
    assert check_expr("null", expected=T.T_NUMBER.with_null(True)).diagnostics == []


def test_condition_must_be_boolean(check_expr) -> None:
    d = check_expr("work_order.title", condition=True).only()
    assert (d.code, d.message, d.hint) == (
        "E3013", "a condition must be a boolean, got string",
        'compare it, e.g. x == "value" or x > 0')
    d = check_expr("technician.skills", condition=True).only()
    assert d.hint == "test membership with 'in' / 'contains', or len(x) > 0"
    d = check_expr("not work_order.parts_count").only()
    assert (d.code, d.message, d.column) == ("E3013", "'not' needs a boolean, got number", 5)
    d = check_expr("work_order.escalated and 1").only()
    assert (d.code, d.message, d.column) == ("E3013", "'and' needs booleans, got number", 26)


# ------------------------------------------------------------------ if and lists


def test_if_branches_of_different_types(check_expr) -> None:
    d = check_expr('if work_order.escalated then 1 else "免费"').only()
    assert (d.code, d.message, d.hint) == (
        "E3016", "'then' gives number but 'else' gives string",
        "both branches must give the same kind of value")
    assert check_expr("if work_order.escalated then 2h else 30").codes == ["E3016"]


def test_if_condition_is_checked_as_a_condition(check_expr) -> None:
    d = check_expr("if work_order.under_warranty then 0 else 100").only()
    assert (d.code, d.message, d.column) == (
        "W4001", "the 'if' condition may be null; null counts as false", 4)
    assert check_expr("if work_order.title then 0 else 100").codes == ["E3013"]


def test_enum_branches_merge_their_values(check_expr) -> None:
    t = check_expr('if work_order.escalated then work_order.priority '
                   'else work_order.customer.tier').type
    assert t is not None and t.enum_values == ("P1", "P2", "P3", "vip", "gold", "standard")


def test_list_mixing(check_expr) -> None:
    d = check_expr('[1, "两个"]').only()
    assert (d.code, d.message, d.column, d.end_column) == (
        "E3017", "list mixes number and string", 5, 9)
    assert check_expr("[15m, 2h, 1d]").diagnostics == []
    assert str(check_expr("[1, null]").type) == "list of number"


def test_membership_and_text_operators(check_expr) -> None:
    assert check_expr('"空调" in technician.skills').diagnostics == []
    assert check_expr('technician.skills contains "空调"').diagnostics == []
    assert check_expr('"漏" in work_order.title').diagnostics == []
    assert check_expr(r'work_order.title matches "^\\d+$"').diagnostics == []
    d = check_expr("1 in technician.skills").only()
    assert (d.code, d.message) == ("E3010", "cannot compare number with list using 'in'")
    d = check_expr("work_order.budget in 5").only()
    assert (d.code, d.message) == ("E3010", "'in' needs a list (or text) on the right, "
                                            "got number")
    d = check_expr("work_order.parts_count matches 1").only()
    assert d.message == "'matches' needs text on both sides, got number and number"


def test_invalid_regular_expression(check_expr) -> None:
    d = check_expr('work_order.title matches "[0-9"').only()
    assert (d.code, d.message, d.column) == (
        "E3015", "invalid regular expression: unterminated character set at position 0", 26)


def test_reference_equality_compares_records(check_expr) -> None:
    assert check_expr("work_order.customer == work_order.customer").diagnostics == []
    d = check_expr("work_order.customer == technician").only()
    assert d.message == "cannot compare customer record with technician record using '=='"
