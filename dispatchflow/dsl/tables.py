"""Decision tables: build from YAML, type-check cells, and analyse statically.

A table has inputs (expressions over one record), outputs (typed), and rows of
cells. An input cell is a unary test (``-``, values, comparisons, ranges,
``not(...)``); a bare word in a cell of an enum input is taken as that enum
value, so ``P1`` needs no quotes. Output cells are expressions.

Static analysis (when every input cell is made of literals): the input space is
cut into finitely many representative points per column (each enum value; for
ordered types every literal bound, the midpoints between bounds and one value
beyond each end), so checking those points decides exactly which rows overlap
(E5001/E5002), which input combinations no row covers (W5003), and which rows
``first`` can never choose (W5004). Cell predicates are compiled by the same
code generator the runtime uses, so analysis and evaluation agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from . import ast
from . import types as T
from .checker import ExprChecker, Scope
from .codegen import Emitter, compile_function
from .diagnostics import DiagnosticBag
from .model import EntityDef, FieldDef
from .parser import parse_cell, parse_expression
from .source import Span
from .wording import duration_text, plural
from .yaml_loader import YamlDocument

MAX_ANALYSIS_POINTS = 50_000
OUTPUT_TYPES = {"number": T.T_NUMBER, "string": T.T_STRING, "boolean": T.T_BOOL,
                "duration": T.T_DURATION, "distance": T.T_DISTANCE, "datetime": T.T_DATETIME}


@dataclass(frozen=True)
class TableInput:
    expr: ast.Expr
    label: dict[str, str]
    text: str


@dataclass(frozen=True)
class TableOutput:
    name: str
    type: T.Type
    label: dict[str, str]
    priority: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class TableRow:
    number: int  # 1-based, as people count rows
    cells: tuple[ast.Cell, ...]
    outputs: tuple[ast.Expr, ...]
    span: Span | None = field(default=None, compare=False)
    note: str | None = None


@dataclass(frozen=True)
class DecisionTable:
    """A checked decision table (IR)."""

    name: str
    entity: str
    hit: str
    aggregate: str | None
    inputs: tuple[TableInput, ...]
    outputs: tuple[TableOutput, ...]
    rows: tuple[TableRow, ...]
    file: str
    label: dict[str, str] = field(default_factory=dict)
    span: Span | None = field(default=None, compare=False)
    # Set by analysis: every input combination matches some row, so (for
    # non-collect tables) outputs are never null for want of a row.
    complete: bool = False
    # Set by analysis: no input combination matches two rows, so the first
    # matching row is the only one (evaluation may stop there).
    exclusive: bool = False


TABLE_ENTITY_PREFIX = "table:"


def table_entity(table: DecisionTable) -> EntityDef | None:
    """A record-like view of a table's outputs, so expressions can read ``sla_targets.x``.

    Every output is nullable (no row may match). Collect tables without an
    aggregate give lists of rows and are not readable this way.
    """
    if table.hit == "collect" and not table.aggregate:
        return None
    kinds = {T.NUMBER: "decimal", T.STRING: "string", T.BOOL: "boolean",
             T.DURATION: "duration", T.DATETIME: "datetime", T.DISTANCE: "decimal"}
    fields = {}
    for i, o in enumerate(table.outputs):
        never_null = table.complete and not any(
            (t := row.outputs[i].type) is None or t.nullable for row in table.rows)
        fields[o.name] = FieldDef(o.name, kinds[o.type.kind], o.label, required=never_null)
    return EntityDef(TABLE_ENTITY_PREFIX + table.name, table.label, fields, table.file)


def table_roots(tables: dict[str, DecisionTable], entity: str,
                taken: set[str]) -> tuple[dict[str, T.Type], dict[str, EntityDef]]:
    """Scope roots for the tables over ``entity`` (names not already taken by a root)."""
    roots: dict[str, T.Type] = {}
    ents: dict[str, EntityDef] = {}
    for name, table in tables.items():
        view = table_entity(table)
        if table.entity != entity or name in taken or view is None:
            continue
        roots[name] = T.entity_type(view.name)
        ents[view.name] = view
    return roots, ents


def cell_source(cell: ast.Cell, var: str, emitter: Emitter) -> str:
    """Python source testing input variable ``var`` against a checked cell."""
    if cell.any:
        return "True"
    parts = []
    for test in cell.tests:
        if test.op == "==":
            assert test.value is not None
            parts.append(f"({var} == {emitter.emit(test.value)})")
        elif test.op == "range":
            assert test.low is not None and test.high is not None
            lo = "<=" if test.low_closed else "<"
            hi = "<=" if test.high_closed else "<"
            parts.append(f"({var} is not None and {emitter.emit(test.low)} {lo} {var} {hi} "
                         f"{emitter.emit(test.high)})")
        else:
            assert test.value is not None
            parts.append(f"({var} is not None and {var} {test.op} {emitter.emit(test.value)})")
    src = parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"
    return f"(not {src})" if cell.negated else src


def _cell_text(doc: YamlDocument, path: tuple, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return doc.raw(path) or str(value)


def build_table(doc: YamlDocument, scope_entities: dict, bag: DiagnosticBag,
                entity_ok: bool) -> DecisionTable | None:
    """Check one table document; None when it is too broken to evaluate."""
    data = doc.data
    file = doc.path
    entity = data["entity"]
    root_type = T.entity_type(entity) if entity_ok else T.T_ERROR
    checker = ExprChecker(Scope({entity: root_type}, scope_entities), bag, file)
    errors_before = bag.error_count
    ok = True
    inputs = []
    for i, spec in enumerate(data["inputs"]):
        path = ("inputs", i, "expr")
        expr = parse_expression(spec["expr"], doc.origin(path), bag)
        if expr is None:
            ok = False
            continue
        inputs.append(TableInput(checker.check(expr), _label(spec.get("label")), spec["expr"]))
    outputs = [TableOutput(o["name"], OUTPUT_TYPES[o["type"]], _label(o.get("label")),
                           tuple(o["priority"]) if "priority" in o else None)
               for o in data["outputs"]]
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        bag.error("E1020", "output names repeat", file, doc.span(("outputs",)))
    hit = data["hit"]
    aggregate = data.get("aggregate")
    if aggregate and hit != "collect":
        bag.error("E1010", "'aggregate' only applies to hit policy collect", file,
                  doc.key_span(("aggregate",)))
    if aggregate and len(outputs) != 1:
        bag.error("E1010", "an aggregated collect table has exactly one output", file,
                  doc.span(("outputs",)))
    if aggregate in ("sum", "min", "max") and outputs and outputs[0].type.kind not in (
            T.NUMBER, T.DURATION, T.DISTANCE):
        bag.error("E3010", f"cannot {aggregate} {outputs[0].type} outputs", file,
                  doc.span(("outputs", 0, "type")))
    if hit == "priority" and not any(o.priority for o in outputs):
        bag.error("E1013", "hit policy priority needs a 'priority' list on an output", file,
                  doc.span(("outputs",)), "list the output values, highest priority first")
    if not ok or len(inputs) != len(data["inputs"]):
        return None
    rows = []
    width = len(inputs) + len(outputs)
    for r, raw_row in enumerate(data["rows"]):
        cells_raw = raw_row["cells"] if isinstance(raw_row, dict) else raw_row
        base: tuple = ("rows", r, "cells") if isinstance(raw_row, dict) else ("rows", r)
        if len(cells_raw) != width:
            bag.error("E5005", f"row {r + 1} has {plural(len(cells_raw), 'cell')}, expected "
                      f"{width} ({plural(len(inputs), 'input')} then "
                      f"{plural(len(outputs), 'output')})", file,
                      doc.span(base))
            ok = False
            continue
        cells, outs = [], []
        for c, value in enumerate(cells_raw):
            path = base + (c,)
            text = _cell_text(doc, path, value)
            if c < len(inputs):
                cell = parse_cell(text, doc.origin(path), bag)
                if cell is None:
                    ok = False
                    continue
                cells.append(_check_cell(cell, inputs[c], checker, bag, file))
            else:
                out = outputs[c - len(inputs)]
                expr = parse_expression(text, doc.origin(path), bag)
                if expr is None:
                    ok = False
                    continue
                expr = _enum_word(expr, out.type, checker) if out.priority else expr
                outs.append(checker.check_value(expr, out.type, f"output '{out.name}'"))
        rows.append(TableRow(r + 1, tuple(cells), tuple(outs), doc.span(base),
                             raw_row.get("note") if isinstance(raw_row, dict) else None))
    if not ok or bag.error_count > errors_before:
        return None
    table = DecisionTable(data["table"], entity, hit, aggregate, tuple(inputs), tuple(outputs),
                          tuple(rows), file, _label(data.get("label")), doc.span(("table",)))
    complete, exclusive = analyse(table, bag)
    return replace(table, complete=complete and hit != "collect", exclusive=exclusive)


def _enum_word(expr: ast.Expr, t: T.Type, checker: ExprChecker) -> ast.Expr:
    """A bare word that names no root is taken as a string value (``P1`` for ``"P1"``)."""
    if isinstance(expr, ast.Path) and not expr.steps and expr.root not in checker.scope.roots:
        return ast.Literal(expr.span, kind="string", value=expr.root)
    return expr


def _check_cell(cell: ast.Cell, inp: TableInput, checker: ExprChecker, bag: DiagnosticBag,
                file: str) -> ast.Cell:
    it = inp.expr.type
    assert it is not None
    tests = []
    for test in cell.tests:
        values: dict[str, Any] = {}
        for key in ("value", "low", "high"):
            v = getattr(test, key)
            if v is None:
                continue
            if it.enum_values is not None and isinstance(v, ast.Path) and not v.steps and \
                    v.root not in checker.scope.roots:
                v = ast.Literal(v.span, kind="string", value=v.root)
            typed = checker.check(v)
            vt = typed.type
            assert vt is not None
            if not vt.is_error and not it.is_error:
                if not T.same_kind(it, vt):
                    unit = {it.kind, vt.kind} - {T.NUMBER}
                    code = "E3012" if unit < {T.DURATION, T.DISTANCE} else "E3010"
                    hint = "write the number with its unit, e.g. 30m or 5km" \
                        if code == "E3012" and unit else None
                    bag.error(code, f"cell value is {vt.base_name()} but input "
                              f"'{inp.text}' is {it.base_name()}", file, v.span, hint)
                elif test.op != "==" and it.kind not in T.ORDERABLE:
                    bag.error("E5006", f"'{test.op}' needs an ordered input; "
                              f"'{inp.text}' is {it.base_name()}", file, v.span)
                else:
                    checker._check_enum_literal(typed, it, inp.expr)
            values[key] = typed
        tests.append(replace(test, **values))
    return replace(cell, tests=tuple(tests))


# ------------------------------------------------------------------ analysis


class _Other:
    """A value equal to no literal: stands for "any other text" in string columns."""

    def __repr__(self) -> str:
        return "any other value"


_OTHER = _Other()


def _literal_values(cell: ast.Cell) -> list[Any] | None:
    out = []
    for test in cell.tests:
        for v in (test.value, test.low, test.high):
            if v is None:
                continue
            if not isinstance(v, ast.Literal) or v.kind == "null":
                return None
            out.append(v.value)
    return out


def _column_points(inp: TableInput, cells: list[ast.Cell]) -> list[Any] | None:
    it = inp.expr.type
    assert it is not None
    literals: list[Any] = []
    ordered = False
    for cell in cells:
        vals = _literal_values(cell)
        if vals is None:
            return None
        literals.extend(vals)
        ordered = ordered or any(t.op != "==" for t in cell.tests)
    if it.enum_values is not None:
        return list(it.enum_values)
    if it.kind == T.BOOL:
        return [True, False]
    if it.kind == T.STRING or not ordered:
        if ordered:
            return None
        return list(dict.fromkeys(literals)) + [_OTHER]
    if it.kind not in (T.NUMBER, T.DURATION, T.DISTANCE):
        return None
    bounds = sorted(set(literals))
    if not bounds:
        return [0]
    one = timedelta(minutes=1) if it.kind == T.DURATION else 1
    points = [bounds[0] - one]
    for a, b in itertools.pairwise(bounds):
        points.extend([a, (a + b) / 2])
    points.extend([bounds[-1], bounds[-1] + one])
    return points


def _describe(table: DecisionTable, point: tuple) -> str:
    return ", ".join(f"{i.text} = {_show(v)}" for i, v in zip(table.inputs, point, strict=True))


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, timedelta):
        return duration_text(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def analyse(table: DecisionTable, bag: DiagnosticBag) -> tuple[bool, bool]:
    """Report overlaps, gaps and unreachable rows (see module docs).

    Returns (complete, exclusive): whether the analysis proved that every input
    combination matches some row, and that none matches two rows (both False
    when the inputs could not be enumerated).
    """
    columns = []
    for c, inp in enumerate(table.inputs):
        points = _column_points(inp, [row.cells[c] for row in table.rows])
        if points is None:
            return False, False  # a non-literal cell: the input space cannot be enumerated
        if inp.expr.type is not None and inp.expr.type.nullable:
            points.append(None)  # a missing value is an input case too
        columns.append(points)
    total = 1
    for pts in columns:
        total *= len(pts)
    if total > MAX_ANALYSIS_POINTS:
        return False, False
    matchers = [_compile_row(row, len(table.inputs)) for row in table.rows]
    overlaps: dict[tuple[int, int], tuple] = {}
    gaps: list[tuple] = []
    chosen_first = [0] * len(table.rows)  # points where the row is the first match
    for point in itertools.product(*columns):
        hits = [r for r, m in enumerate(matchers) if m(point)]
        if not hits:
            gaps.append(point)
            continue
        chosen_first[hits[0]] += 1
        for a, b in itertools.combinations(hits, 2):
            overlaps.setdefault((a, b), point)
    rows = table.rows
    if table.hit in ("unique", "any"):
        for (a, b), point in sorted(overlaps.items()):
            if table.hit == "any" and _same_outputs(rows[a], rows[b]):
                continue
            code = "E5001" if table.hit == "unique" else "E5002"
            bag.error(code, f"rows {rows[a].number} and {rows[b].number} both match when "
                      f"{_describe(table, point)}", table.file, rows[b].span,
                      "make the rows exclusive, or use hit policy first / priority / collect")
    if table.hit != "collect" and gaps:
        examples = "; ".join(_describe(table, g) for g in gaps[:3])
        more = f" (and {len(gaps) - 3} more)" if len(gaps) > 3 else ""
        bag.warning("W5003", f"no row matches when {examples}{more}", table.file, table.span,
                    "add a row for these cases, or a last row of '-' cells as the default")
    if table.hit == "first":
        for r, row in enumerate(rows):
            if chosen_first[r] == 0:
                bag.warning("W5004", f"row {row.number} can never be chosen: earlier rows "
                            "match every case it matches", table.file, row.span,
                            "move it above the rows that shadow it, or delete it")
    return not gaps, not overlaps


def _same_outputs(a: TableRow, b: TableRow) -> bool:
    def key(e: ast.Expr) -> Any:
        return (e.kind, e.value) if isinstance(e, ast.Literal) else id(e)
    return [key(e) for e in a.outputs] == [key(e) for e in b.outputs]


def _compile_row(row: TableRow, n_inputs: int) -> Callable[[tuple], bool]:
    emitter = Emitter()
    conds = [cell_source(cell, f"_p[{i}]", emitter) for i, cell in enumerate(row.cells)]
    return compile_function("_row", ["_p"], [f"return {' and '.join(conds) or 'True'}"],
                            emitter, "<table analysis>")


def _label(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"zh": value, "en": value}
    return dict(value)
