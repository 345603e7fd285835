"""Tests for dispatchflow.dsl.yaml_loader: YAML 1.2-style scalars, duplicates, positions."""

from __future__ import annotations

import textwrap

import pytest

from dispatchflow.dsl.diagnostics import Diagnostic, DiagnosticBag, render_text
from dispatchflow.dsl.parser import parse_expression
from dispatchflow.dsl.source import Origin, SourceFile, Span
from dispatchflow.dsl.yaml_loader import YamlDocument, load_yaml


def load(text: str, path: str = "flows/repair.yaml") -> tuple[YamlDocument | None,
                                                              list[Diagnostic]]:
    bag = DiagnosticBag()
    doc = load_yaml(SourceFile(path, textwrap.dedent(text)), bag)
    return doc, bag.sorted()


def load_ok(text: str) -> YamlDocument:
    doc, diagnostics = load(text)
    assert doc is not None and diagnostics == [], render_text(diagnostics)
    return doc


# ------------------------------------------------------------------ scalars


@pytest.mark.parametrize("written, value", [
    # YAML 1.1 would turn each of these into a bool, a sexagesimal int, an octal int or
    # a date; operations staff mean the text.
    ("NO", "NO"), ("no", "no"), ("yes", "yes"), ("Yes", "Yes"), ("on", "on"), ("Off", "Off"),
    ("y", "y"), ("n", "n"),
    ("17:45", "17:45"), ("12:30:00", "12:30:00"),
    ("02134", "02134"), ("007", "007"), ("0o17", "0o17"), ("0x1F", "0x1F"), ("1_000", "1_000"),
    ("2026-10-01", "2026-10-01"), ("2026-10-01T08:00:00+08:00", "2026-10-01T08:00:00+08:00"),
    (".inf", ".inf"), (".nan", ".nan"),
    ("漏水", "漏水"), ("'NO'", "NO"), ('"17:45"', "17:45"),
    # Only these are not text:
    ("true", True), ("True", True), ("false", False), ("FALSE", False),
    ("null", None), ("~", None), ("", None),
    ("0", 0), ("42", 42), ("-3", -3), ("+5", 5),
    ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("2.5E-1", 0.25),
])
def test_plain_scalars_follow_yaml_1_2(written: str, value: object) -> None:
    doc = load_ok(f"zip_code: {written}\n")
    assert doc.data == {"zip_code": value}
    assert type(doc.data["zip_code"]) is type(value)


def test_surprising_keys_stay_strings() -> None:
    doc = load_ok("on: work_order.created\nNO: 1\nyes: [a]\n2026: x\n")
    assert list(doc.data) == ["on", "NO", "yes", "2026"]


def test_raw_text_is_kept_for_every_scalar() -> None:
    doc = load_ok("rows:\n  - [02134, 5, 1.50, true, 漏水]\n")
    assert [doc.raw(("rows", 0, i)) for i in range(5)] == ["02134", "5", "1.50", "true", "漏水"]
    assert doc.data["rows"][0] == ["02134", 5, 1.5, True, "漏水"]
    assert doc.raw(("rows",)) is None


def test_nested_structures() -> None:
    doc = load_ok("""\
        states:
          new:
            transitions:
              - {to: assigned, on: work_order.assigned}
          assigned: {final: true}
        """)
    assert doc.data == {"states": {"new": {"transitions": [
        {"to": "assigned", "on": "work_order.assigned"}]}, "assigned": {"final": True}}}


def test_empty_document() -> None:
    doc = load_ok("# 空文件\n")
    assert doc.data is None


# ------------------------------------------------------------------ problems


def test_duplicate_keys_are_reported_and_the_last_wins() -> None:
    doc, diagnostics = load("""\
        entity: work_order
        label: 工单
        label: 工单二
        """, "entities/work_order.yaml")
    assert doc is not None and doc.data["label"] == "工单二"
    (d,) = diagnostics
    assert (d.code, d.message, d.line, d.column, d.end_column) == (
        "E1002", "duplicate key 'label'", 3, 1, 6)
    assert d.hint == "YAML keeps only the last one; remove or rename the duplicate"


def test_duplicate_keys_in_nested_mappings() -> None:
    _, diagnostics = load("fields:\n  title: {type: string, type: text}\n")
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("E1002", 2, 25)]


def test_syntax_error_returns_none_with_a_position() -> None:
    doc, diagnostics = load("states:\n  new: [a, b\n")
    assert doc is None
    (d,) = diagnostics
    assert d.code == "E1001" and d.message.startswith("YAML syntax error: ")
    # The error is at the end of the file; it is shown after the last text, not on
    # the blank line that follows it.
    assert (d.line, d.column) == (2, 13)


def test_colon_in_a_plain_value_gets_a_quoting_hint() -> None:
    doc, diagnostics = load("working_hours:\n  mon: 09:00-12:00 lunch: 13:00\n")
    assert doc is None
    (d,) = diagnostics
    assert (d.code, d.line, d.column) == ("E1001", 2, 25)
    assert d.message.startswith("YAML syntax error: mapping values are not allowed")
    assert d.hint == "a ':' inside a plain value needs quotes, e.g. \"09:00-18:00\""


@pytest.mark.parametrize("text", ["fields:\n\tname: {type: string}\n", "a: 1\n\tb: 2\n"])
def test_tab_indentation_gets_a_hint(text: str) -> None:
    _, diagnostics = load(text)
    (d,) = diagnostics
    assert (d.code, d.line, d.column) == ("E1001", 2, 1)
    assert d.hint == "YAML does not allow tabs for indentation; use spaces"


def test_local_tags_are_refused() -> None:
    doc, diagnostics = load("title: 漏水\nmore: !custom 1\n")
    assert doc is not None and doc.data == {"title": "漏水", "more": "1"}
    assert [(d.code, d.line, d.column, d.message) for d in diagnostics] == [
        ("E1010", 2, 7, "unsupported YAML tag !custom")]
    assert diagnostics[0].hint == "remove the '!' tag; bundles use plain YAML values"


@pytest.mark.parametrize("text", ["budget: !!float 一百\n", "level: !!int 0x1F\n"])
def test_explicit_standard_tags_with_bad_values_are_reported_not_raised(text: str) -> None:
    doc, diagnostics = load(text)
    assert [d.code for d in diagnostics] == ["E1010"]


def test_explicit_standard_tags_are_refused() -> None:
    _, diagnostics = load("active: !!bool yes\nhook: !!python/name:os.system x\n")
    assert [(d.code, d.line) for d in diagnostics] == [("E1010", 1), ("E1010", 2)]


def test_non_scalar_keys_are_refused() -> None:
    doc, diagnostics = load("? [a, b]\n: 1\nok: 2\n")
    assert doc is not None and doc.data == {"ok": 2}
    assert [(d.code, d.message, d.line) for d in diagnostics] == [
        ("E1012", "mapping keys must be plain names", 1)]


# ------------------------------------------------------------------ positions


def test_positions_of_keys_and_values() -> None:
    doc = load_ok("""\
        flow: repair
        states:
          new:
            timers:
              - {after: 15m, to: escalated}
        """)
    assert doc.key_span(("flow",)) == Span(1, 1, 1, 5)
    assert doc.span(("flow",)) == Span(1, 7, 1, 13)
    assert doc.key_span(("states", "new")) == Span(3, 3, 3, 6)
    assert doc.span(("states", "new", "timers", 0)) == Span(5, 9, 5, 36)
    assert doc.span(("states", "new", "timers", 0, "after")) == Span(5, 17, 5, 20)
    assert doc.key_span(("states", "new", "timers", 0, "to")) == Span(5, 22, 5, 24)


def test_span_falls_back_to_the_nearest_ancestor() -> None:
    doc = load_ok("flow: repair\nstates:\n  new: {}\n")
    assert doc.span(("states", "new", "transitions", 0)) == doc.span(("states", "new"))
    assert doc.span(()) == Span(1, 1, 4, 1)
    # A key that does not exist has no key position: the value's is used.
    assert doc.key_span(("states", "missing")) == doc.span(("states",))


def test_positions_count_characters_not_bytes() -> None:
    doc = load_ok("label: {zh: 维修流程, en: Repair}\n")
    assert doc.span(("label", "en")) == Span(1, 23, 1, 29)


# ------------------------------------------------------------------ origins of expressions


def expr_error_column(doc: YamlDocument, path: tuple) -> tuple[int, int]:
    """Parse the string at ``path`` (which holds a '=' slip) and return the error position."""
    value = doc.data
    for key in path:
        value = value[key]
    bag = DiagnosticBag()
    assert parse_expression(value, doc.origin(path), bag) is None
    (d,) = bag.sorted()
    return d.line, d.column


def test_plain_scalar_origin() -> None:
    doc = load_ok("guard: work_order.budget = 5\n")
    assert doc.origin(("guard",)) == Origin("flows/repair.yaml", 1, 8, block_indent=7)
    assert expr_error_column(doc, ("guard",)) == (1, 26)


def test_quoted_scalar_origin_skips_the_quote() -> None:
    doc = load_ok("guard: 'work_order.budget = 5'\nwhen: \"work_order.budget = 5\"\n")
    assert doc.origin(("guard",)) == Origin("flows/repair.yaml", 1, 9)
    assert expr_error_column(doc, ("guard",)) == (1, 27)
    assert expr_error_column(doc, ("when",)) == (2, 26)


def test_literal_block_scalar_origin() -> None:
    doc = load_ok("""\
        transitions:
          - to: assigned
            guard: |
              work_order.escalated
                and work_order.budget = 5
        """)
    path = ("transitions", 0, "guard")
    assert doc.origin(path) == Origin("flows/repair.yaml", 4, 7, block_indent=6)
    assert expr_error_column(doc, path) == (5, 31)


def test_block_scalar_with_leading_blank_lines() -> None:
    # Regression: the origin skipped the blank lines, but the value keeps them, so
    # every position inside the block was reported one line too low per blank line.
    doc = load_ok("""\
        transitions:
          - to: assigned
            guard: |

              work_order.escalated
                and work_order.budget = 5
        """)
    path = ("transitions", 0, "guard")
    assert doc.data["transitions"][0]["guard"].startswith("\nwork_order.escalated")
    assert expr_error_column(doc, path) == (6, 31)


def test_folded_block_scalar_origin() -> None:
    doc = load_ok("""\
        guard: >
          work_order.escalated and
          work_order.budget = 5
        """)
    assert doc.origin(("guard",)) == Origin("flows/repair.yaml", 2, 3, block_indent=2)
    assert doc.data["guard"] == "work_order.escalated and work_order.budget = 5\n"
    # Folding joins the lines, so positions after the first line are approximate; the
    # error still lands on the right line of the file when the text is re-split.
    line, _ = expr_error_column(doc, ("guard",))
    assert line == 2


def test_multi_line_plain_scalar_origin() -> None:
    doc = load_ok("""\
        states:
          new:
            guard: work_order.escalated
              and work_order.budget = 5
        """)
    assert doc.data["states"]["new"]["guard"] == "work_order.escalated and work_order.budget = 5"
    assert doc.origin(("states", "new", "guard")) == Origin(
        "flows/repair.yaml", 3, 12, block_indent=11)


def test_origin_of_a_non_string_falls_back_to_its_position() -> None:
    doc = load_ok("timers:\n  - after: 15\n")
    assert doc.origin(("timers", 0, "after")) == Origin("flows/repair.yaml", 2, 12)


def _load_problems(text: str) -> tuple[YamlDocument | None, list[Diagnostic]]:
    bag = DiagnosticBag()
    doc = load_yaml(SourceFile("x.yaml", text), bag)
    return doc, bag.sorted()


def test_an_alias_that_contains_itself_is_reported_not_a_crash() -> None:
    doc, [d] = _load_problems("a: &a [1, *a]\n")
    assert doc is None
    assert (d.code, d.line, d.column, d.message) == ("E1010", 1, 4, "an alias contains itself")
    assert d.hint == "YAML aliases (*name) cannot refer to the value they are part of"


def test_an_alias_bomb_is_reported_before_it_expands() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcde", "bcdef", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    doc, [d] = _load_problems("\n".join(lines) + "\n")
    assert doc is None
    assert (d.code, d.line, d.message) == (
        "E1010", 0, "the file expands to 1234573 values through aliases, more than 100000")


def test_shared_aliases_below_the_limit_still_load() -> None:
    doc, problems = _load_problems("base: &b {x: 1}\nother: *b\n")
    assert problems == [] and doc is not None
    assert doc.data == {"base": {"x": 1}, "other": {"x": 1}}
