"""Tests for dispatchflow.dsl.tables: building, cell checking and static analysis.

Analysis reports overlapping rows (E5001 under ``unique``, E5002 under ``any``
when outputs differ), input combinations no row covers (W5003) and rows
``first`` can never choose (W5004), but only when every input cell is literal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dispatchflow.dsl import ast
from dispatchflow.dsl.diagnostics import render_text


@pytest.fixture
def analyse(compile_files) -> Callable[..., list[tuple[str, str]]]:
    """``analyse(hit, inputs, rows, outputs=...)`` -> [(code, message)] of the table file."""
    def run(hit: str, inputs: list[str], rows: list[str],
            outputs: str = "{name: respond_within, type: duration}",
            extra: str = "") -> list[tuple[str, str]]:
        text = ("table: sla\nentity: work_order\nhit: " + hit + "\n" + extra + "inputs:\n"
                + "".join(f"  - expr: {i}\n" for i in inputs)
                + "outputs:\n  - " + outputs + "\nrows:\n"
                + "".join(f"  - {r}\n" for r in rows))
        result = compile_files({"rules/sla.yaml": text})
        assert all(d.file == "rules/sla.yaml" for d in result.diagnostics), \
            render_text(result.diagnostics)
        return [(d.code, d.message) for d in result.diagnostics]
    return run


# ------------------------------------------------------------------ overlaps


def test_overlap_under_unique(analyse) -> None:
    assert analyse("unique", ["work_order.priority"],
                   ["[P1, 30m]", "['P1, P2', 2h]", "[P3, 4h]"]) == [
        ("E5001", "rows 1 and 2 both match when work_order.priority = P1")]


def test_each_overlapping_pair_is_reported_once(analyse) -> None:
    assert analyse("unique", ["work_order.parts_count"],
                   ["['>= 0', 30m]", "['>= 5', 2h]", "['>= 10', 4h]", "['< 0', 8h]"]) == [
        ("E5001", "rows 1 and 2 both match when work_order.parts_count = 5"),
        ("E5001", "rows 1 and 3 both match when work_order.parts_count = 10"),
        ("E5001", "rows 2 and 3 both match when work_order.parts_count = 10"),
    ]


def test_different_outputs_under_any(analyse) -> None:
    assert analyse("any", ["work_order.priority"], ["['P1, P2', 30m]", "['P2, P3', 2h]"]) == [
        ("E5002", "rows 1 and 2 both match when work_order.priority = P2")]


def test_same_outputs_under_any_are_fine(analyse) -> None:
    assert analyse("any", ["work_order.priority"], ["['P1, P2', 30m]", "['P2, P3', 30m]"]) == []


@pytest.mark.parametrize("hit", ["first", "priority", "collect"])
def test_overlaps_are_allowed_by_other_hit_policies(analyse, hit: str) -> None:
    outputs = "{name: team, type: string, priority: [first_line, second_line]}"
    found = analyse(hit, ["work_order.priority"], ["['P1, P2', first_line]", "['-', second_line]"],
                    outputs=outputs)
    assert [code for code, _ in found if code in ("E5001", "E5002")] == []


def test_exclusive_rows_over_two_inputs(analyse) -> None:
    assert analyse("unique", ["work_order.priority", "work_order.customer.tier"], [
        "[P1, '-', 30m]",
        "['P2, P3', vip, 1h]",
        "['P2, P3', 'not(vip)', 4h]",
    ]) == []


def test_overlap_over_two_inputs_names_both(analyse) -> None:
    assert analyse("unique", ["work_order.priority", "work_order.customer.tier"], [
        "[P1, '-', 30m]",
        "['-', vip, 1h]",
        "['P2, P3', 'not(vip)', 4h]",
    ]) == [("E5001", "rows 1 and 2 both match when work_order.priority = P1, "
                     "work_order.customer.tier = vip")]


def test_null_is_an_input_case_of_a_nullable_input(analyse) -> None:
    # The customer is optional, so its tier may be null: no listed value covers that.
    assert analyse("unique", ["work_order.priority", "work_order.customer.tier"], [
        "[P1, '-', 30m]",
        "['P2, P3', vip, 1h]",
        "['P2, P3', 'gold, standard', 4h]",
    ]) == [("W5003", "no row matches when work_order.priority = P2, work_order.customer.tier "
                     "= null; work_order.priority = P3, work_order.customer.tier = null")]


# ------------------------------------------------------------------ ranges


GAPS_OUTSIDE = ("W5003", "no row matches when work_order.parts_count = -1; "
                           "work_order.parts_count = 11")


@pytest.mark.parametrize("rows, expected", [
    # [0..5) then [5..10]: exclusive, 5 covered once.
    (["['[0..5)', 30m]", "['[5..10]', 2h]"], [GAPS_OUTSIDE]),
    # [0..5] then [5..10]: both include 5.
    (["['[0..5]', 30m]", "['[5..10]', 2h]"],
     [GAPS_OUTSIDE, ("E5001", "rows 1 and 2 both match when work_order.parts_count = 5")]),
    # (0..5] then (5..10): 5 only in the first; 0 and 10 in neither.
    (["['(0..5]', 30m]", "['(5..10)', 2h]"],
     [("W5003", "no row matches when work_order.parts_count = -1; work_order.parts_count = 0; "
                "work_order.parts_count = 10 (and 1 more)")]),
    # [0..5) then (5..10]: 5 in neither.
    (["['[0..5)', 30m]", "['(5..10]', 2h]"],
     [("W5003", "no row matches when work_order.parts_count = -1; work_order.parts_count = 5; "
                "work_order.parts_count = 11")]),
])
def test_the_four_range_brackets(analyse, rows: list[str], expected: list) -> None:
    assert analyse("unique", ["work_order.parts_count"], rows) == expected


def test_durations_in_ranges(analyse) -> None:
    null_gap = "work_order.estimated_duration = null"  # the field is optional
    assert analyse("unique", ["work_order.estimated_duration"],
                   ["['< 2h', 1h]", "['[2h..1d]', 4h]", "['> 1d', 8h]"]) == [
        ("W5003", f"no row matches when {null_gap}")]
    assert analyse("unique", ["work_order.estimated_duration"],
                   ["['< 2h', 1h]", "['(2h..1d]', 4h]", "['> 1d', 8h]"]) == [
        ("W5003", f"no row matches when work_order.estimated_duration = 2h; {null_gap}")]
    assert analyse("first", ["work_order.estimated_duration"],
                   ["['< 2h', 1h]", "['-', 4h]"]) == []


# ------------------------------------------------------------------ gaps


def test_gap_between_less_and_greater(analyse) -> None:
    assert analyse("unique", ["work_order.parts_count"], ["['< 5', 30m]", "['> 5', 4h]"]) == [
        ("W5003", "no row matches when work_order.parts_count = 5")]


def test_gaps_at_both_ends_of_a_range(analyse) -> None:
    assert analyse("unique", ["work_order.parts_count"], ["['[1..10]', 30m]"]) == [
        ("W5003", "no row matches when work_order.parts_count = 0; "
                  "work_order.parts_count = 11")]


def test_gap_in_enum_coverage(analyse) -> None:
    assert analyse("unique", ["work_order.priority"], ["[P1, 30m]", "[P2, 2h]"]) == [
        ("W5003", "no row matches when work_order.priority = P3")]


def test_many_gaps_are_summarised(analyse) -> None:
    assert analyse("unique", ["work_order.priority", "work_order.category"],
                   ["[P1, hvac, 30m]"]) == [
        ("W5003", "no row matches when work_order.priority = P1, work_order.category = "
                  "plumbing; work_order.priority = P1, work_order.category = electrical; "
                  "work_order.priority = P1, work_order.category = null (and 8 more)")]


def test_negated_cells_complete_the_coverage(analyse) -> None:
    assert analyse("unique", ["work_order.priority"], ["[P1, 30m]", "['not(P1)', 4h]"]) == []


def test_boolean_input_coverage(analyse) -> None:
    assert analyse("unique", ["work_order.escalated"], ["[true, 30m]"]) == [
        ("W5003", "no row matches when work_order.escalated = False")]
    assert analyse("unique", ["work_order.escalated"], ["[true, 30m]", "[false, 4h]"]) == []


def test_string_input_without_a_catch_all_has_a_gap(analyse) -> None:
    assert analyse("unique", ["work_order.required_skill"],
                   ["['\"电工\"', 30m]", "['\"水工\"', 2h]"]) == [
        ("W5003", "no row matches when work_order.required_skill = any other value; "
                  "work_order.required_skill = null")]
    assert analyse("first", ["work_order.required_skill"],
                   ["['\"电工\"', 30m]", "['-', 2h]"]) == []


def test_a_default_row_closes_every_gap(analyse) -> None:
    assert analyse("first", ["work_order.priority", "work_order.parts_count"],
                   ["[P1, '> 3', 30m]", "['-', '-', 4h]"]) == []


def test_collect_tables_do_not_report_gaps(analyse) -> None:
    assert analyse("collect", ["work_order.priority"], ["[P1, 30m]"]) == []


# ------------------------------------------------------------------ unreachable rows


def test_unreachable_row_under_first(analyse) -> None:
    assert analyse("first", ["work_order.parts_count"],
                   ["['>= 0', 30m]", "['[3..5]', 2h]", "['< 0', 4h]"]) == [
        ("W5004", "row 2 can never be chosen: earlier rows match every case it matches")]


def test_row_shadowed_by_two_earlier_rows(analyse) -> None:
    assert analyse("first", ["work_order.priority"],
                   ["[P1, 30m]", "['P2, P3', 2h]", "['P1, P3', 4h]"]) == [
        ("W5004", "row 3 can never be chosen: earlier rows match every case it matches")]


def test_partly_shadowed_row_is_reachable(analyse) -> None:
    assert analyse("first", ["work_order.priority"],
                   ["[P1, 30m]", "['P1, P2', 2h]", "['-', 4h]"]) == []


# ------------------------------------------------------------------ non-literal cells


def test_non_literal_cells_skip_analysis(analyse) -> None:
    # These rows overlap whenever parts_count >= required_level >= 0, but a cell that
    # reads a field cannot be enumerated, so nothing is reported statically.
    assert analyse("unique", ["work_order.parts_count"],
                   ["['>= work_order.required_level', 30m]", "['>= 0', 2h]"]) == []


def test_null_literal_cells_skip_analysis(analyse) -> None:
    assert analyse("unique", ["work_order.budget"], ["['null', 30m]", "['> 100', 2h]"]) == []


# ------------------------------------------------------------------ cells: enum words, types


def test_bare_enum_words_are_enum_values(compile_ok) -> None:
    app = compile_ok({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: unique
        inputs:
          - expr: work_order.priority
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - [P1, 30m]
          - ['"P2"', 2h]
          - ['not(P1, "P2")', 4h]
        """})
    rows = app.tables["sla"].rows
    assert rows[0].cells[0].tests == (ast.CellTest("==", value=ast.Literal(
        None, kind="string", value="P1")),)
    assert rows[1].cells[0].tests == (ast.CellTest("==", value=ast.Literal(
        None, kind="string", value="P2")),)
    assert [t.value.value for t in rows[2].cells[0].tests] == ["P1", "P2"]
    assert rows[2].cells[0].negated


def test_bare_words_are_only_enum_values_for_enum_inputs(compile_files) -> None:
    result = compile_files({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: first
        inputs:
          - expr: work_order.required_skill
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - [plumber, 30m]
          - ['-', 4h]
        """})
    assert [(d.code, d.message, d.line, d.column) for d in result.diagnostics] == [
        ("E3002", "unknown name 'plumber'", 9, 6)]


def test_misspelt_enum_word_in_a_cell(analyse) -> None:
    assert analyse("first", ["work_order.priority"], ["[P0, 30m]", "['-', 4h]"]) == [
        ("E3011", "'P0' is not a value of work_order.priority (P1, P2, P3)")]


def test_cell_value_of_the_wrong_type(compile_files) -> None:
    # Regression: text in a number column was reported as E3012 "units do not match"
    # with the hint "write the number with its unit" (tables._check_cell).
    result = compile_files({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: first
        inputs:
          - expr: work_order.parts_count
          - expr: work_order.title
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - ['"三个"', 3, 30m]
          - ['-', '-', 4h]
        """})
    assert [(d.code, d.message, d.column, d.hint) for d in result.diagnostics] == [
        ("E3010", "cell value is string but input 'work_order.parts_count' is number", 7, None),
        ("E3010", "cell value is number but input 'work_order.title' is string", 14, None),
    ]


def test_cell_value_of_the_wrong_unit(analyse) -> None:
    assert analyse("first", ["work_order.estimated_duration"], ["['< 90', 30m]", "['-', 4h]"]) == [
        ("E3012", "cell value is number but input 'work_order.estimated_duration' is duration")]
    assert analyse("first", ["work_order.estimated_duration"], ["['< 5km', 30m]", "['-', 4h]"]) == [
        ("E3010", "cell value is distance but input 'work_order.estimated_duration' is duration")]


def test_output_cells_are_checked_against_the_output_type(analyse) -> None:
    assert analyse("first", ["work_order.priority"], ["[P1, 30]", "['-', 4h]"]) == [
        ("E3012", "output 'respond_within' must be a duration, got a number")]


def test_output_enum_words_with_a_priority_list(compile_ok) -> None:
    app = compile_ok({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: priority
        inputs:
          - expr: work_order.priority
        outputs:
          - {name: level, type: string, priority: [critical, high, normal]}
        rows:
          - [P1, critical]
          - ['-', normal]
        """})
    assert [r.outputs[0].value for r in app.tables["sla"].rows] == ["critical", "normal"]
    assert app.tables["sla"].outputs[0].priority == ("critical", "high", "normal")


def test_table_with_an_unparsable_input_is_not_built(compile_files) -> None:
    result = compile_files({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: first
        inputs:
          - expr: work_order.priority ==
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - [P1, 30m]
        """})
    assert [(d.code, d.line) for d in result.diagnostics] == [("E2003", 5)]
    assert result.app is None


def test_row_with_a_note_and_its_span(compile_ok) -> None:
    app = compile_ok({"rules/sla.yaml": """\
        table: sla
        entity: work_order
        hit: first
        inputs:
          - expr: work_order.priority
        outputs:
          - {name: respond_within, type: duration}
        rows:
          - {cells: [P1, 30m], note: 合同约定}
          - ['-', 4h]
        """})
    first, second = app.tables["sla"].rows
    assert (first.number, first.note, first.span.line) == (1, "合同约定", 9)
    assert (second.number, second.note) == (2, None)


# ------------------------------------------------------------------ completeness


def test_complete_tables_are_marked_and_give_non_null_outputs(compile_ok) -> None:
    from dispatchflow.dsl.tables import table_entity

    rows_complete = "  - [P1, 30m]\n  - ['P2, P3', 4h]\n"
    rows_gappy = "  - [P1, 30m]\n  - [P2, 4h]\n"
    head = ("table: sla\nentity: work_order\nhit: unique\ninputs:\n"
            "  - expr: work_order.priority\noutputs:\n"
            "  - {name: respond_within, type: duration}\nrows:\n")
    app = compile_ok({"rules/sla.yaml": head + rows_complete,
                      "rules/sla2.yaml": head.replace("table: sla", "table: sla2") + rows_gappy})
    complete, gappy = app.tables["sla"], app.tables["sla2"]
    assert (complete.complete, gappy.complete) == (True, False)
    assert table_entity(complete).fields["respond_within"].nullable is False
    assert table_entity(gappy).fields["respond_within"].nullable is True
