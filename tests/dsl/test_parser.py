"""Tests for dispatchflow.dsl.parser: every grammar construct becomes the right AST.

AST nodes compare without their spans and types, so expected trees are written
with a dummy span; positions are tested separately where they matter.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatchflow.dsl import ast
from dispatchflow.dsl.diagnostics import Diagnostic, DiagnosticBag, render_text
from dispatchflow.dsl.parser import (
    parse_cell,
    parse_expression,
    parse_rules_file,
)
from dispatchflow.dsl.source import Origin, SourceFile, Span

S = Span(0, 0, 0, 0)


# ------------------------------------------------------------------ AST builders


def num(value: float) -> ast.Literal:
    return ast.Literal(S, kind="number", value=value)


def text(value: str) -> ast.Literal:
    return ast.Literal(S, kind="string", value=value)


def dur(**kw: float) -> ast.Literal:
    return ast.Literal(S, kind="duration", value=timedelta(**kw))


def boolean(value: bool) -> ast.Literal:
    return ast.Literal(S, kind="bool", value=value)


NULL = ast.Literal(S, kind="null", value=None)


def path(dotted: str) -> ast.Path:
    """``"work_order.customer?.tier"`` -> Path with a safe last step."""
    root, *rest = dotted.replace("?.", ".?").split(".")
    steps = tuple(ast.PathStep(s.lstrip("?"), s.startswith("?"), S) for s in rest)
    return ast.Path(S, root=root, root_span=S, steps=steps)


def binary(op: str, left: ast.Expr, right: ast.Expr) -> ast.Binary:
    return ast.Binary(S, op=op, left=left, right=right)


def compare(op: str, left: ast.Expr, right: ast.Expr) -> ast.Compare:
    return ast.Compare(S, op=op, left=left, right=right)


def call(name: str, *args: ast.Expr) -> ast.Call:
    return ast.Call(S, name=name, name_span=S, args=args)


def not_(operand: ast.Expr) -> ast.Unary:
    return ast.Unary(S, op="not", operand=operand)


# ------------------------------------------------------------------ helpers


def parse(source: str, origin: Origin | None = None) -> ast.Expr:
    bag = DiagnosticBag()
    node = parse_expression(source, origin or Origin("<t>"), bag)
    assert node is not None and len(bag) == 0, render_text(bag)
    return node


def parse_error(source: str) -> Diagnostic:
    bag = DiagnosticBag()
    assert parse_expression(source, Origin("<t>"), bag) is None
    (diagnostic,) = bag.sorted()
    return diagnostic


def cell(source: str) -> ast.Cell:
    bag = DiagnosticBag()
    node = parse_cell(source, Origin("<cell>"), bag)
    assert node is not None and len(bag) == 0, render_text(bag)
    return node


def rules(source: str) -> tuple[ast.RulesFile, list[Diagnostic]]:
    bag = DiagnosticBag()
    result = parse_rules_file(SourceFile("rules/dispatch.rules", source), bag)
    return result, bag.sorted()


def rules_ok(source: str) -> ast.RulesFile:
    result, diagnostics = rules(source)
    assert diagnostics == [], render_text(diagnostics)
    return result


# ------------------------------------------------------------------ literals


@pytest.mark.parametrize("source, expected", [
    ("42", num(42)),
    ("3.5", num(3.5)),
    ("2.5e3", num(2500.0)),
    ("1e3", num(1000.0)),
    ("0", num(0)),
    ('"工单"', text("工单")),
    ("'空调不制冷'", text("空调不制冷")),
    (r'"say \"hi\""', text('say "hi"')),
    (r'"第一行\n第二行\t!"', text("第一行\n第二行\t!")),
    ('""', text("")),
    ('"# not a comment"', text("# not a comment")),
    ("true", boolean(True)),
    ("false", boolean(False)),
    ("null", NULL),
    ("15m", dur(minutes=15)),
    ("2h", dur(hours=2)),
    ("1d", dur(days=1)),
    ("1w", dur(weeks=1)),
    ("90s", dur(seconds=90)),
    ("1.5h", dur(minutes=90)),
    ("5km", ast.Literal(S, kind="distance", value=5.0)),
    ("0.5km", ast.Literal(S, kind="distance", value=0.5)),
])
def test_literals(source: str, expected: ast.Literal) -> None:
    node = parse(source)
    assert node == expected
    assert type(node.value) is type(expected.value)  # 42 stays int, 1e3 is float


def test_negative_literals_are_folded_and_other_negations_are_not() -> None:
    assert parse("-5") == num(-5)
    assert parse("-15m") == dur(minutes=-15)
    assert parse("-2.5km") == ast.Literal(S, kind="distance", value=-2.5)
    assert parse("--5") == num(5)
    assert parse("-work_order.budget") == ast.Unary(S, op="neg", operand=path("work_order.budget"))


@pytest.mark.parametrize("source", ["15min", "5 km", "15 m"])
def test_a_unit_must_touch_its_number(source: str) -> None:
    d = parse_error(source)
    assert d.code == "E2001"
    assert d.hint == "two values in a row: is an operator or a comma missing?"


def test_comments_are_ignored() -> None:
    assert parse("work_order.budget # 预算\n") == path("work_order.budget")
    assert parse("work_order.budget // budget") == path("work_order.budget")


# ------------------------------------------------------------------ paths, calls, lists


def test_paths_with_plain_and_safe_steps() -> None:
    node = parse("work_order.customer?.tier")
    assert node == path("work_order.customer?.tier")
    assert isinstance(node, ast.Path)
    assert [s.safe for s in node.steps] == [False, True]
    assert node.dotted() == "work_order.customer.tier"
    assert parse("work_order ?. customer") == path("work_order?.customer")


def test_path_positions_point_at_each_name() -> None:
    node = parse("work_order.customer?.tier")
    assert isinstance(node, ast.Path)
    assert node.root_span == Span(1, 1, 1, 11)
    assert node.steps[0].span == Span(1, 12, 1, 20)
    assert node.steps[1].span == Span(1, 22, 1, 26)
    assert node.span == Span(1, 1, 1, 26)


def test_calls() -> None:
    assert parse("now()") == call("now")
    assert parse('contains_any(work_order.description, ["漏水", "leak"])') == call(
        "contains_any", path("work_order.description"),
        ast.ListLit(S, items=(text("漏水"), text("leak"))))
    assert parse("round(max(1, 2) / 3, 1)") == call(
        "round", binary("/", call("max", num(1), num(2)), num(3)), num(1))
    node = parse("coalesce(work_order.budget, 0)")
    assert isinstance(node, ast.Call)
    assert node.name_span == Span(1, 1, 1, 9)


def test_lists() -> None:
    assert parse("[]") == ast.ListLit(S, items=())
    assert parse("[1, 2, 3]") == ast.ListLit(S, items=(num(1), num(2), num(3)))
    assert parse('["P1", "P2",]') == ast.ListLit(S, items=(text("P1"), text("P2")))
    assert parse("[[1], []]") == ast.ListLit(S, items=(ast.ListLit(S, items=(num(1),)),
                                                       ast.ListLit(S, items=())))


# ------------------------------------------------------------------ operators and precedence


@pytest.mark.parametrize("source, expected", [
    ("1 + 2 * 3", binary("+", num(1), binary("*", num(2), num(3)))),
    ("(1 + 2) * 3", binary("*", binary("+", num(1), num(2)), num(3))),
    ("10 - 4 - 3", binary("-", binary("-", num(10), num(4)), num(3))),
    ("12 / 3 % 2", binary("%", binary("/", num(12), num(3)), num(2))),
    ("-work_order.budget * 2",
     binary("*", ast.Unary(S, op="neg", operand=path("work_order.budget")), num(2))),
    ("a or b and c", binary("or", path("a"), binary("and", path("b"), path("c")))),
    ("a and b or c", binary("or", binary("and", path("a"), path("b")), path("c"))),
    ("not a and b", binary("and", not_(path("a")), path("b"))),
    ("not not a", not_(not_(path("a")))),
    ("not a == b", not_(compare("==", path("a"), path("b")))),
    ("a == 1 or b != 2",
     binary("or", compare("==", path("a"), num(1)), compare("!=", path("b"), num(2)))),
    ("x + 1 > y * 2",
     compare(">", binary("+", path("x"), num(1)), binary("*", path("y"), num(2)))),
    ("now() - 2h <= work_order.scheduled_at",
     compare("<=", binary("-", call("now"), dur(hours=2)), path("work_order.scheduled_at"))),
])
def test_precedence(source: str, expected: ast.Expr) -> None:
    assert parse(source) == expected


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_every_comparison_operator(op: str) -> None:
    assert parse(f"technician.level {op} 3") == compare(op, path("technician.level"), num(3))


def test_comparisons_do_not_chain() -> None:
    d = parse_error("1 < 2 < 3")
    assert (d.code, d.line, d.column) == ("E2001", 1, 7)


def test_membership_and_text_operators() -> None:
    assert parse('work_order.priority in ["P1", "P2"]') == compare(
        "in", path("work_order.priority"), ast.ListLit(S, items=(text("P1"), text("P2"))))
    assert parse('work_order.priority not in ["P3"]') == compare(
        "not in", path("work_order.priority"), ast.ListLit(S, items=(text("P3"),)))
    assert parse('technician.skills contains "空调"') == compare(
        "contains", path("technician.skills"), text("空调"))
    assert parse(r'work_order.title matches "^\\d{4}"') == compare(
        "matches", path("work_order.title"), text(r"^\d{4}"))


def test_is_null_and_is_not_null() -> None:
    assert parse("work_order.budget is null") == ast.IsNull(
        S, operand=path("work_order.budget"), negated=False)
    assert parse("work_order.budget + 1 is not null") == ast.IsNull(
        S, operand=binary("+", path("work_order.budget"), num(1)), negated=True)


def test_if_then_else() -> None:
    assert parse('if work_order.escalated then "加急" else "普通"') == ast.IfExpr(
        S, cond=path("work_order.escalated"), then=text("加急"), otherwise=text("普通"))
    # The else branch extends as far as possible; nested ifs read naturally.
    assert parse("if a then 1 else if b then 2 else 3") == ast.IfExpr(
        S, cond=path("a"), then=num(1),
        otherwise=ast.IfExpr(S, cond=path("b"), then=num(2), otherwise=num(3)))
    assert parse("if a then b else c or d") == ast.IfExpr(
        S, cond=path("a"), then=path("b"), otherwise=binary("or", path("c"), path("d")))


def test_keywords_cannot_be_names() -> None:
    d = parse_error("work_order.priority == then")
    assert d.code == "E2001"
    assert d.hint == "'then' is a keyword; an expression is missing before it"


# ------------------------------------------------------------------ origins


def test_positions_are_mapped_through_the_origin() -> None:
    # An expression that starts at line 4, column 11 of a YAML file.
    node = parse("work_order.budget > 5", Origin("flows/repair.yaml", 4, 11))
    assert node.span == Span(4, 11, 4, 32)
    assert isinstance(node, ast.Compare)
    assert node.right.span == Span(4, 31, 4, 32)


def test_block_scalar_positions_use_the_block_indent() -> None:
    origin = Origin("flows/repair.yaml", 7, 9, block_indent=8)
    node = parse("work_order.escalated\nand work_order.budget > 5", origin)
    assert isinstance(node, ast.Binary)
    assert node.left.span == Span(7, 9, 7, 29)
    assert node.right.span == Span(8, 13, 8, 34)


def test_syntax_error_positions_are_mapped_through_the_origin() -> None:
    bag = DiagnosticBag()
    assert parse_expression("work_order.budget => 5", Origin("f.yaml", 3, 9), bag) is None
    (d,) = bag.sorted()
    assert (d.file, d.line, d.column, d.end_column) == ("f.yaml", 3, 27, 28)


# ------------------------------------------------------------------ .rules files

TRIAGE = '''\
# 工单分诊
ruleset triage on work_order.created
  hit first

rule "漏水优先" salience 100
  when contains_any(work_order.description, ["漏水", "leak"])
  then set work_order.priority = "P1"
       tag work_order "urgent"
       untag work_order "routine"
       emit work_order.escalated
       notify supervisor_alert
       start flow repair
       request dispatch using nearest
       request dispatch

rule "低优先级" salience -5
  when work_order.priority == "P3"
  then tag work_order "低"

rule "default order"
  when true
  then tag work_order "seen"

ruleset audit on work_order.updated
rule "log" when true then emit work_order.audited
'''


def test_ruleset_header_rules_and_salience() -> None:
    result = rules_ok(TRIAGE)
    assert result.path == "rules/dispatch.rules"
    assert result.policies == ()
    triage, audit = result.rulesets
    assert (triage.name, triage.entity, triage.event, triage.hit) == (
        "triage", "work_order", "created", "first")
    assert (audit.name, audit.event, audit.hit) == ("audit", "updated", "all")
    assert [(r.name, r.salience) for r in triage.rules] == [
        ("漏水优先", 100), ("低优先级", -5), ("default order", 0)]
    assert triage.rules[1].condition == compare("==", path("work_order.priority"), text("P3"))
    assert triage.file == "rules/dispatch.rules"
    assert triage.trigger_span == Span(2, 19, 2, 29)
    assert triage.hit_span == Span(3, 7, 3, 12)
    assert triage.rules[0].name_span == Span(5, 6, 5, 12)


def test_every_action() -> None:
    actions = rules_ok(TRIAGE).rulesets[0].rules[0].actions
    assert actions == (
        ast.SetAction(path("work_order.priority"), text("P1"), S),
        ast.TagAction("work_order", "urgent", False, S),
        ast.TagAction("work_order", "routine", True, S),
        ast.EmitAction("work_order", "escalated", S),
        ast.NotifyAction("supervisor_alert", S),
        ast.StartFlowAction("repair", S),
        ast.DispatchAction("nearest", S),
        ast.DispatchAction(None, S),
    )
    assert actions[0].span == Span(7, 8, 7, 38)


POLICIES = '''\
dispatch policy nearest for work_order from technician
  require technician.on_shift as "在岗"
  require technician.level >= coalesce(work_order.required_level,
                                       1)
  score 10 - technician.open_orders as "负载"
  score 5 if technician.region == "浦东"
  tiebreak technician.rating desc
  tiebreak technician.name asc
  tiebreak technician.level
  offer one at a time, accept within 15m, retry 2 then escalate to role "supervisor"

dispatch policy rush for work_order from technician
  offer broadcast top 3 accept within 1h escalate to role dispatcher

dispatch policy market for work_order from technician
  offer grab pool, accept within 2h
'''


def test_dispatch_policy_clauses() -> None:
    nearest, rush, market = rules_ok(POLICIES).policies
    assert (nearest.name, nearest.entity, nearest.pool) == ("nearest", "work_order", "technician")
    assert [r.label for r in nearest.requires] == [
        "在岗", "technician.level >= coalesce(work_order.required_level, 1)"]
    assert nearest.requires[0].condition == path("technician.on_shift")
    assert [s.label for s in nearest.scores] == ["负载", "score 2"]
    assert nearest.scores[0].guard is None
    assert nearest.scores[1].value == num(5)
    assert nearest.scores[1].guard == compare("==", path("technician.region"), text("浦东"))
    assert [(t.value, t.descending) for t in nearest.tiebreaks] == [
        (path("technician.rating"), True), (path("technician.name"), False),
        (path("technician.level"), False)]
    assert nearest.header_span == Span(1, 1, 1, 55)
    assert rush.requires == rush.scores == rush.tiebreaks == ()
    assert market.offer is not None and market.offer.escalate_to_role is None


def test_the_three_offer_strategies() -> None:
    nearest, rush, market = rules_ok(POLICIES).policies
    assert nearest.offer == ast.OfferClause("one_at_a_time", 1, dur(minutes=15), 2,
                                            "supervisor", S)
    assert rush.offer == ast.OfferClause("broadcast", 3, dur(hours=1), 0, "dispatcher", S)
    assert market.offer == ast.OfferClause("grab_pool", 1, dur(hours=2), 0, None, S)
    assert nearest.offer.role_span == Span(10, 73, 10, 85)


def test_empty_and_comment_only_files() -> None:
    assert rules_ok("") == ast.RulesFile("rules/dispatch.rules", (), ())
    assert rules_ok("# 还没有规则\n// nothing yet\n") == ast.RulesFile(
        "rules/dispatch.rules", (), ())


def test_recovery_reports_an_error_in_each_broken_block_and_keeps_the_rest() -> None:
    source = '''\
ruleset intake on work_order.created
rule "ok one"
  when work_order.priority == "P1"
  then tag work_order "urgent"

ruleset broken_a on work_order.created
rule "bad" when work_order.priority = "P1" then tag work_order "x"

ruleset middle on work_order.updated
rule "ok two"
  when work_order.escalated
  then notify supervisor_alert

dispatch policy broken_b for work_order from technician
  require technician.level >=
  score 1

dispatch policy fine for work_order from technician
  require technician.on_shift

ruleset tail on work_order.closed
rule "ok three" when true then emit work_order.archived
'''
    result, diagnostics = rules(source)
    assert [(d.code, d.line, d.column) for d in diagnostics] == [
        ("E2001", 7, 37), ("E2001", 16, 3)]
    assert [rs.name for rs in result.rulesets] == ["intake", "middle", "tail"]
    assert [p.name for p in result.policies] == ["fine"]
    # Positions of blocks after an error are still those of the original file.
    assert result.rulesets[2].span.line == 21
    assert result.policies[0].requires[0].span == Span(19, 3, 19, 30)
    assert result.policies[0].requires[0].label == "technician.on_shift"


def test_error_in_the_first_block_keeps_all_later_blocks() -> None:
    result, diagnostics = rules('''\
ruleset a on work_order.created
rule "x" when then tag work_order "x"
ruleset b on work_order.created
rule "y" when true then tag work_order "y"
''')
    assert [(d.code, d.line) for d in diagnostics] == [("E2001", 2)]
    assert [rs.name for rs in result.rulesets] == ["b"]


# ------------------------------------------------------------------ decision-table cells


def test_any_cell() -> None:
    assert cell("-") == ast.Cell((), any=True)


def test_value_cells() -> None:
    assert cell("P1") == ast.Cell((ast.CellTest("==", value=path("P1")),))
    assert cell('"P1", "P2"') == ast.Cell((ast.CellTest("==", value=text("P1")),
                                          ast.CellTest("==", value=text("P2"))))
    assert cell("-5") == ast.Cell((ast.CellTest("==", value=num(-5)),))
    assert cell("work_order.required_level") == ast.Cell(
        (ast.CellTest("==", value=path("work_order.required_level")),))


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_cells(op: str) -> None:
    assert cell(f"{op} 2h") == ast.Cell((ast.CellTest(op, value=dur(hours=2)),))


@pytest.mark.parametrize("source, low_closed, high_closed", [
    ("[1..5]", True, True),
    ("[1..5)", True, False),
    ("(1..5]", False, True),
    ("(1..5)", False, False),
])
def test_range_cells(source: str, low_closed: bool, high_closed: bool) -> None:
    assert cell(source) == ast.Cell((ast.CellTest("range", low=num(1), high=num(5),
                                                  low_closed=low_closed,
                                                  high_closed=high_closed),))


def test_range_of_decimals_and_durations() -> None:
    assert cell("[1.5..2.5]") == ast.Cell((ast.CellTest("range", low=num(1.5), high=num(2.5)),))
    assert cell("[30m..2h)") == ast.Cell((ast.CellTest(
        "range", low=dur(minutes=30), high=dur(hours=2), high_closed=False),))


def test_negated_and_combined_cells() -> None:
    assert cell("not(P1, P2)") == ast.Cell((ast.CellTest("==", value=path("P1")),
                                           ast.CellTest("==", value=path("P2"))), negated=True)
    assert cell("not(< 5)") == ast.Cell((ast.CellTest("<", value=num(5)),), negated=True)
    assert cell("[1..5], > 10") == ast.Cell((ast.CellTest("range", low=num(1), high=num(5)),
                                            ast.CellTest(">", value=num(10))))


@pytest.mark.parametrize("source, code, column", [
    ("not P1", "E5006", 5),
    ("(1..5", "E5006", 6),
    ("1 2", "E5006", 3),
    ("“P1”", "E2002", 1),
])
def test_bad_cells(source: str, code: str, column: int) -> None:
    bag = DiagnosticBag()
    assert parse_cell(source, Origin("rules/sla.yaml", 9, 8), bag) is None
    (d,) = bag.sorted()
    assert (d.code, d.file, d.line, d.column) == (code, "rules/sla.yaml", 9, 7 + column)
