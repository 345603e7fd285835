"""Property tests: the parser never crashes, and compiled code agrees with a tree walk.

(a) Any text — random unicode or random token soup — fed to the parser gives an
AST or diagnostics, never an exception (and the checker copes with whatever
parses).

(b) Random well-typed expressions over a small work-order schema are compiled
with :func:`~dispatchflow.dsl.codegen.compile_expression` and evaluated on
random records; the result must equal that of :func:`reference`, a plain tree
walk written from the documented null semantics: a comparison with a null
operand is false, arithmetic with null is null, null in a boolean position is
false, division or modulo by zero is null.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatchflow.dsl import types as T
from dispatchflow.dsl.checker import ExprChecker, Scope
from dispatchflow.dsl.codegen import compile_expression
from dispatchflow.dsl.diagnostics import DiagnosticBag, render_text
from dispatchflow.dsl.parser import parse_cell, parse_expression, parse_rules_file
from dispatchflow.dsl.source import Origin, SourceFile

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------ (a) never raises

TOKENS = ["work_order", ".", "?.", "budget", "priority", "(", ")", "[", "]", ",", "..", "-",
          "+", "*", "/", "%", "==", "!=", "<", ">=", "and", "or", "not", "in", "contains",
          "matches", "is", "null", "true", "if", "then", "else", "1", "2.5", "15m", "5km",
          '"漏水"', "'P1'", '"', "now", "coalesce", "ruleset", "rule", "when", "set", "=",
          "tag", "dispatch", "policy", "for", "from", "require", "score", "offer", "one",
          "at", "a", "time", "accept", "within", "\n", "，", "（", "&&", "#", "工单"]

soup = st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)
any_text = st.one_of(st.text(), soup)


@SETTINGS
@given(text=any_text)
def test_parse_expression_never_raises(scope, text: str) -> None:
    bag = DiagnosticBag()
    node = parse_expression(text, Origin("<fuzz>"), bag)
    if node is None:
        assert bag.has_errors
        assert all(d.code.startswith("E2") for d in bag.sorted())
    else:
        assert not bag.has_errors
        ExprChecker(scope, bag, "<fuzz>").check(node)  # unknown names etc. are diagnostics


@SETTINGS
@given(text=any_text)
def test_parse_rules_file_never_raises(text: str) -> None:
    bag = DiagnosticBag()
    result = parse_rules_file(SourceFile("rules/fuzz.rules", text), bag)
    assert result.path == "rules/fuzz.rules"
    for d in bag.sorted():
        assert d.code in ("E2001", "E2002", "E2003")
        assert d.line >= 1 and d.column >= 1
        # Positions point into the file (or one past its end for E2003).
        assert d.line <= text.count("\n") + 1


@SETTINGS
@given(text=any_text)
def test_parse_cell_never_raises(text: str) -> None:
    bag = DiagnosticBag()
    cell = parse_cell(text, Origin("rules/sla.yaml", 3, 7), bag)
    assert (cell is None) == bag.has_errors


# ------------------------------------------------------------------ (b) codegen == tree walk

# A mini-AST of tuples: ("lit", v) ("field", name) ("neg", e) ("not", e)
# ("arith", op, a, b) ("bool", op, a, b) ("cmp", op, a, b) ("in", negated, e, values)
# ("isnull", negated, e) ("if", c, a, b) ("coalesce", a, b) ("contains", text_expr, lit)
Node = tuple


@dataclass(frozen=True)
class Gen:
    """A generated expression: its DSL text and the mini-AST the reference walks."""

    text: str
    node: Node


def lit(value: Any) -> Gen:
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value + '"'
    else:
        text = repr(value)
    return Gen(text if not (isinstance(value, int | float) and value < 0) else f"({text})",
               ("lit", value))


def field(name: str) -> Gen:
    return Gen(f"work_order.{name}", ("field", name))


PRIORITIES = ["P1", "P2", "P3"]
CATEGORIES = ["hvac", "plumbing", "electrical"]
TITLES = ["厨房漏水", "空调不制冷", "Leak in bathroom", ""]

numbers = st.one_of(st.integers(-5, 20), st.sampled_from([0.5, 2.5, -1.5, 0.0])).map(lit)
num_fields = st.sampled_from(["budget", "parts_count"]).map(field)
bool_leaves = st.one_of(st.booleans().map(lit),
                        st.sampled_from(["escalated", "under_warranty"]).map(field))


def combine_num(children: st.SearchStrategy[Gen], bools: st.SearchStrategy[Gen]
                ) -> st.SearchStrategy[Gen]:
    arith = st.tuples(st.sampled_from(["+", "-", "*", "/", "%"]), children, children).map(
        lambda t: Gen(f"({t[1].text} {t[0]} {t[2].text})", ("arith", t[0], t[1].node, t[2].node)))
    neg = children.map(lambda a: Gen(f"(-{a.text})", ("neg", a.node)))
    maybe_null = st.one_of(children, st.just(lit(None)))
    cond = st.tuples(bools, children, maybe_null, st.booleans()).map(
        lambda t: Gen(*_if(t[0], *((t[1], t[2]) if t[3] else (t[2], t[1])))))
    coalesce = st.tuples(children, children).map(
        lambda t: Gen(f"coalesce({t[0].text}, {t[1].text})", ("coalesce", t[0].node, t[1].node)))
    return st.one_of(arith, neg, cond, coalesce)


def _if(c: Gen, a: Gen, b: Gen) -> tuple[str, Node]:
    return f"(if {c.text} then {a.text} else {b.text})", ("if", c.node, a.node, b.node)


def bool_exprs(nums: st.SearchStrategy[Gen]) -> st.SearchStrategy[Gen]:
    def extend(children: st.SearchStrategy[Gen]) -> st.SearchStrategy[Gen]:
        logic = st.tuples(st.sampled_from(["and", "or"]), children, children).map(
            lambda t: Gen(f"({t[1].text} {t[0]} {t[2].text})",
                          ("bool", t[0], t[1].node, t[2].node)))
        negation = children.map(lambda a: Gen(f"(not {a.text})", ("not", a.node)))
        cmp = st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), nums, nums).map(
            lambda t: Gen(f"({t[1].text} {t[0]} {t[2].text})",
                          ("cmp", t[0], t[1].node, t[2].node)))
        bool_eq = st.tuples(st.sampled_from(["==", "!="]), children, children).map(
            lambda t: Gen(f"({t[1].text} {t[0]} {t[2].text})",
                          ("cmp", t[0], t[1].node, t[2].node)))
        enum_cmp = st.one_of(
            st.tuples(st.sampled_from(["==", "!="]), st.sampled_from(PRIORITIES)).map(
                lambda t: Gen(f'(work_order.priority {t[0]} "{t[1]}")',
                              ("cmp", t[0], ("field", "priority"), ("lit", t[1])))),
            st.tuples(st.sampled_from(["==", "!="]), st.sampled_from(CATEGORIES)).map(
                lambda t: Gen(f'("{t[1]}" {t[0]} work_order.category)',
                              ("cmp", t[0], ("lit", t[1]), ("field", "category")))),
        )
        enum_in = st.one_of(
            st.tuples(st.booleans(), st.lists(st.sampled_from(PRIORITIES), min_size=1,
                                              max_size=3)).map(
                lambda t: _in(t[0], field("priority"), t[1])),
            st.tuples(st.booleans(), st.lists(st.sampled_from(CATEGORIES), min_size=1,
                                              max_size=3)).map(
                lambda t: _in(t[0], field("category"), t[1])),
            st.tuples(st.booleans(), nums, st.lists(st.integers(-2, 5), min_size=1,
                                                    max_size=3)).map(
                lambda t: _in(t[0], t[1], t[2])),
        )
        is_null = st.tuples(st.booleans(), st.one_of(nums, children, st.just(field("category")))
                            ).map(lambda t: Gen(f"({t[1].text} is {'not ' if t[0] else ''}null)",
                                                ("isnull", t[0], t[1].node)))
        text_ops = st.one_of(
            st.sampled_from(["漏水", "Leak", "空调", ""]).map(
                lambda w: Gen(f'(work_order.title contains "{w}")',
                              ("contains", ("field", "title"), w))),
            st.sampled_from(["漏水", "Leak", "空调"]).map(
                lambda w: Gen(f'(work_order.title == "{w}")',
                              ("cmp", "==", ("field", "title"), ("lit", w)))),
        )
        cond = st.tuples(children, children, children).map(lambda t: Gen(*_if(*t)))
        return st.one_of(logic, negation, cmp, bool_eq, enum_cmp, enum_in, is_null, text_ops,
                         cond)
    return st.recursive(bool_leaves, extend, max_leaves=12)


def _in(negated: bool, left: Gen, values: list) -> Gen:
    items = ", ".join(lit(v).text for v in values)
    op = "not in" if negated else "in"
    return Gen(f"({left.text} {op} [{items}])", ("in", negated, left.node, tuple(values)))


number_exprs = st.recursive(st.one_of(numbers, num_fields),
                            lambda children: combine_num(children, bool_leaves), max_leaves=10)
expressions = st.one_of(number_exprs, bool_exprs(number_exprs))

records = st.fixed_dictionaries({
    "budget": st.sampled_from([None, 0.0, -3.0, 2.5, 100.0]),
    "parts_count": st.integers(-2, 6),
    "priority": st.sampled_from(PRIORITIES),
    "category": st.sampled_from([None, *CATEGORIES]),
    "escalated": st.booleans(),
    "under_warranty": st.sampled_from([None, True, False]),
    "title": st.sampled_from(TITLES),
})


# -- the reference interpreter

ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "%": operator.mod}
CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}


def truthy(value: Any) -> bool:
    """Null (and only null) besides false counts as false in a boolean position."""
    return value is True


def reference(node: Node, record: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return record.get(node[1])
    if kind == "neg":
        v = reference(node[1], record)
        return None if v is None else -v
    if kind == "not":
        return not truthy(reference(node[1], record))
    if kind == "arith":
        a, b = reference(node[2], record), reference(node[3], record)
        if a is None or b is None:
            return None
        if node[1] in ("/", "%") and b == 0:
            return None
        return ARITH[node[1]](a, b)
    if kind == "bool":
        a = truthy(reference(node[2], record))
        b = truthy(reference(node[3], record))
        return (a and b) if node[1] == "and" else (a or b)
    if kind == "cmp":
        a, b = reference(node[2], record), reference(node[3], record)
        if a is None or b is None:
            return False
        return CMP[node[1]](a, b)
    if kind == "in":
        v = reference(node[2], record)
        if v is None:
            return False
        return (v not in node[3]) if node[1] else (v in node[3])
    if kind == "isnull":
        v = reference(node[2], record)
        return (v is not None) if node[1] else (v is None)
    if kind == "if":
        branch = node[2] if truthy(reference(node[1], record)) else node[3]
        return reference(branch, record)
    if kind == "coalesce":
        a = reference(node[1], record)
        return a if a is not None else reference(node[2], record)
    if kind == "contains":
        text = reference(node[1], record)
        return text is not None and node[2] in text
    raise AssertionError(node)


@SETTINGS
@given(expr=expressions, record=records)
def test_compiled_code_agrees_with_the_reference_interpreter(
        scope: Scope, now, expr: Gen, record: dict[str, Any]) -> None:
    bag = DiagnosticBag()
    bag.add_source(SourceFile("<gen>", expr.text))
    node = parse_expression(expr.text, Origin("<gen>"), bag)
    assert node is not None, render_text(bag.sorted())
    typed = ExprChecker(scope, bag, "<gen>").check(node)
    assert not bag.has_errors, expr.text + "\n" + render_text(bag.sorted())
    fn = compile_expression(typed, ["work_order", "technician"])
    got = fn(record, {}, now)
    want = reference(expr.node, record)
    assert got == want and type(got) is type(want), (expr.text, record, got, want)


@SETTINGS
@given(expr=bool_exprs(number_exprs), record=records)
def test_boolean_position_agrees_with_truthiness(scope: Scope, now, expr: Gen,
                                                 record: dict[str, Any]) -> None:
    bag = DiagnosticBag()
    node = parse_expression(expr.text, Origin("<gen>"), bag)
    assert node is not None
    typed = ExprChecker(scope, bag, "<gen>").check_condition(node)
    assert not bag.has_errors
    assert typed.type is not None and typed.type.kind == T.BOOL
    fn = compile_expression(typed, ["work_order", "technician"], boolean=True)
    assert fn(record, {}, now) is truthy(reference(expr.node, record))
