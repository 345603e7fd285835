"""Compile a checked DSL condition into a SQLAlchemy Core WHERE clause.

Row filters (``rows`` in ``roles.yaml``) and API ``?filter=`` strings are DSL
conditions over one record. :func:`to_sql` turns such a condition into SQL, so
lists, counts, exports and reports filter inside the database; the same
condition compiled to Python (:func:`~dispatchflow.dsl.codegen.compile_expression`)
checks single records. The two must agree row for row, so the SQL keeps the
DSL's null semantics (docs/dsl.md): a comparison with a null operand is *false*,
never SQL's unknown, and ``not (x > 3)`` is true when ``x`` is null.

How the constructs map:

* A sub-expression that does not read the record (``user.regions``,
  ``now() - 2h``, a literal) is evaluated once in Python, by the code the rules
  use, and bound as a parameter: durations as seconds, datetimes in UTC,
  references as ids. ``in`` with an empty list is false.
* ``record.f`` is the column (geo fields only support ``is null``; list and
  attachment fields are not filterable). ``record.ref.f`` is a correlated scalar
  subquery on the target table; a comparison with one becomes a semi-join
  ``ref IN (SELECT id FROM e_target WHERE deleted_at IS NULL AND ...)``, nested
  for longer paths. A soft-deleted target reads as missing, exactly as a
  resolver returning None does on the Python side (see :class:`RecordBinder`);
  so does a target the caller's row filter hides, when ``to_sql`` gets ``hop``.
* Comparisons, ``and``/``or``/``not``, ``in``/``not in``, ``is null``,
  ``contains`` and ``x in text`` (case-sensitive substring: ``instr`` on SQLite,
  ``LIKE`` with ``%``/``_`` escaped on PostgreSQL), ``matches`` (``~`` on
  PostgreSQL, RE2 as SQLite's ``REGEXP``: see :mod:`.sql_regex`),
  arithmetic on numbers and durations (``/`` is true division, ``%`` floored,
  both null on a zero divisor), ``if``/``then``/``else`` (CASE), ``coalesce``,
  ``lower``, ``upper`` (SQLite changes ASCII letters only), ``len``, ``abs``.
  String ordering uses code points (``COLLATE "C"`` on PostgreSQL), as Python does.

Null handling. In a WHERE clause a NULL and a false both drop the row, so the
default (``strict=False``) lets comparisons yield NULL where the DSL says false;
every place that could turn a NULL into a true (``not``, ``is null`` of a
condition, a condition used as a value) asks for the two-valued form, which
guards with ``IS NOT NULL`` or ``COALESCE(..., false)``. ``strict=True`` makes
the whole clause two-valued, for callers that negate it.

Anything without a faithful SQL form (``distance_km``, date arithmetic on
fields, list fields, ``%`` on decimals...) raises :class:`UnsupportedFilter`
with the expression's position and a hint; there is no silent fallback.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.types import TypeEngine

from ...dsl import ast
from ...dsl import types as T
from ...dsl.checker import ExprChecker, Scope
from ...dsl.codegen import compile_expression, ref_id
from ...dsl.diagnostics import DiagnosticBag
from ...dsl.model import EntityDef, FieldDef
from ...dsl.parser import parse_expression
from ...dsl.source import Origin, SourceFile
from ...dsl.suggest import did_you_mean
from ...errors import DslError, EvaluationError
from ..store.sql_regex import pattern_problem
from ..store.storage import ENTITY_PREFIX
from .views import RecordBinder, RefView, UnresolvedReference

if TYPE_CHECKING:
    from ...dsl.compiler import App

#: The file name errors of ``?filter=`` strings report.
FILTER_FILE = "filter"

#: Builtins with an SQL form when they read the record (others are fine on bound values).
SQL_FUNCTIONS = ("coalesce", "lower", "upper", "len", "abs", "now")

#: ``hop(entity, alias)``: the extra condition on a referenced row (the caller's row
#: filter on that entity, or None for every row) that a path must pass to read it.
Hop = Callable[[str, FromClause], "ColumnElement[bool] | None"]

class UnsupportedFilter(DslError):
    """A checked expression has no faithful SQL form (raised with its position and a hint)."""


# ------------------------------------------------------------------ dialect-specific SQL


class _Substring(FunctionElement[bool]):
    """``hay`` contains ``needle``, case-sensitive; args: hay, needle, LIKE pattern."""

    name = "df_substring"
    type = Boolean()
    inherit_cache = True


@compiles(_Substring)
def _substring_default(element: _Substring, compiler: Any, **kw: Any) -> str:
    # SQLite's LIKE ignores ASCII case; instr() compares exactly, like Python's `in`.
    hay, needle, _ = list(element.clauses)
    return f"(instr({compiler.process(hay, **kw)}, {compiler.process(needle, **kw)}) > 0)"


@compiles(_Substring, "postgresql")
def _substring_pg(element: _Substring, compiler: Any, **kw: Any) -> str:
    hay, _, pattern = list(element.clauses)
    return f"({compiler.process(hay, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '\\')"


class _CodePoints(FunctionElement[str]):
    """Text ordered by code point, as Python orders ``str`` (SQLite's default)."""

    name = "df_codepoints"
    type = String()
    inherit_cache = True


@compiles(_CodePoints)
def _codepoints_default(element: _CodePoints, compiler: Any, **kw: Any) -> str:
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(_CodePoints, "postgresql")
def _codepoints_pg(element: _CodePoints, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(list(element.clauses)[0], **kw)}) COLLATE "C"'


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ------------------------------------------------------------------ translation

_NOT_CONST = object()
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}
_FOLD_CACHE: dict[tuple, Callable[..., Any]] = {}
_FOLD_CACHE_MAX = 4096


@dataclass(frozen=True)
class _Sql:
    """A translated value: the SQL, whether it may be NULL, and the folded constant if any."""

    expr: Any
    nullable: bool = True
    integer: bool = False
    const: Any = _NOT_CONST
    kind: str = "scalar"  # scalar | list | geo
    is_null: Any = None  # geo columns: the IS NULL test

    @property
    def known(self) -> bool:
        return self.const is not _NOT_CONST


def _unsupported(node: ast.Node, message: str, hint: str | None, file: str | None
                 ) -> UnsupportedFilter:
    return UnsupportedFilter(message, file=file, line=node.span.line, column=node.span.column,
                             hint=hint)


def _children(node: ast.Expr) -> Iterator[ast.Expr]:
    yield node
    for child in ast.children(node):
        yield from _children(child)


def _paths(node: ast.Expr) -> Iterator[ast.Path]:
    return (n for n in _children(node) if isinstance(n, ast.Path))


def _typesig(node: ast.Expr) -> tuple:
    """What node equality leaves out: types, and literal classes (``0 == 0.0``)."""
    return tuple((n.type, type(n.value) if isinstance(n, ast.Literal) else None)
                 for n in _children(node))


class _Translator:
    """Translates one expression; a copy with another record table handles semi-joins."""

    def __init__(self, *, record_root: str, entity: EntityDef, table: FromClause,
                 tables: Mapping[str, FromClause], entities: Mapping[str, EntityDef],
                 roots: dict[str, Any], now: datetime, file: str | None,
                 hop: Hop | None = None) -> None:
        self.record_root = record_root
        self.hop = hop
        self.entity = entity
        self.table = table
        self.tables = tables
        self.entities = entities
        self.roots = roots
        self.now = now
        self.file = file
        # id(node) -> (node, reads the record); holding the node keeps its id unique
        self._depends: dict[int, tuple[ast.Expr, bool]] = {}

    def with_record(self, entity: EntityDef, table: FromClause) -> _Translator:
        sub = _Translator(record_root=self.record_root, entity=entity, table=table,
                          tables=self.tables, entities=self.entities, roots=self.roots,
                          now=self.now, file=self.file, hop=self.hop)
        sub._depends = self._depends
        return sub

    def reachable(self, target: str, alias: FromClause) -> list[ColumnElement[bool]]:
        """Conditions a referenced row (``alias`` of ``target``) must meet to be read."""
        conditions: list[ColumnElement[bool]] = [alias.c.deleted_at.is_(None)]
        extra = None if self.hop is None else self.hop(target, alias)
        if extra is not None:
            conditions.append(extra)
        return conditions

    def fail(self, node: ast.Node, message: str, hint: str | None = None) -> UnsupportedFilter:
        return _unsupported(node, message, hint, self.file)

    # -- helpers
    def depends(self, node: ast.Expr) -> bool:
        """Whether ``node`` reads the record (otherwise it is evaluated in Python)."""
        found = self._depends.get(id(node))
        if found is None:
            found = self._depends[id(node)] = (
                node, any(p.root == self.record_root for p in _paths(node)))
        return found[1]

    def constant(self, node: ast.Expr) -> _Sql | None:
        """``node`` evaluated in Python and bound, or None when it needs the database."""
        if self.depends(node):
            return None
        try:
            return _bind(self.fold(node), node.type)
        except UnresolvedReference:
            return None  # reads through a user reference: a subquery resolves it

    def fold(self, node: ast.Expr) -> Any:
        """Evaluate a record-free node with the compiled Python code the rules use."""
        names = tuple(self.roots)
        key = (node, names, _typesig(node))
        fn = _FOLD_CACHE.get(key)
        if fn is None:
            if len(_FOLD_CACHE) >= _FOLD_CACHE_MAX:
                _FOLD_CACHE.clear()
            fn = _FOLD_CACHE[key] = compile_expression(node, list(names), self.file or "<filter>")
        try:
            return fn(*self.roots.values(), self.now)
        except UnresolvedReference:
            raise
        except Exception as exc:
            raise EvaluationError(f"could not evaluate part of the filter: {exc}", file=self.file,
                                  line=node.span.line, column=node.span.column) from exc

    def alias(self, entity: str, node: ast.Node) -> FromClause:
        table = self.tables.get(entity)
        if table is None:
            raise ValueError(f"to_sql needs the table of entity '{entity}' (for "
                             f"line {node.span.line}, column {node.span.column}) in tables=")
        return table.alias()

    def field(self, entity: EntityDef, name: str, node: ast.Node) -> FieldDef:
        f = entity.fields.get(name)
        if f is None:
            raise self.fail(node, f"unknown field '{name}' on {entity.name}",
                            did_you_mean(name, entity.fields))
        return f

    def scalar(self, v: _Sql, node: ast.Expr) -> _Sql:
        if v.kind == "geo":
            raise self.fail(node, f"'{_text(node)}' is a geo point: a filter can only test it "
                            "with 'is null' or 'is not null'",
                            "distances are for dispatch policies (distance_km), not filters")
        if v.kind == "list":
            raise self.fail(node, "a list can only be used on the right of 'in' / 'not in' "
                            "or the left of 'contains' here")
        return v

    @staticmethod
    def guard(cmp: Any, operands: list[_Sql], strict: bool) -> ColumnElement[bool]:
        """``cmp`` made two-valued (false where an operand is NULL) when ``strict``."""
        nullable = [o for o in operands if o.nullable and not o.known]
        if not strict or not nullable:
            return cmp
        if all(isinstance(o.expr, ColumnClause) for o in nullable):
            return and_(*(o.expr.is_not(None) for o in nullable), cmp)
        return func.coalesce(type_coerce(cmp, Boolean), false())

    # -- conditions
    def cond(self, node: ast.Expr, strict: bool) -> ColumnElement[bool]:
        """``node`` in a boolean position (null counts as false)."""
        known = self.constant(node)
        if known is not None:
            return true() if known.const is True else false()
        if isinstance(node, ast.Binary) and node.op in ("and", "or"):
            parts = (self.cond(node.left, strict), self.cond(node.right, strict))
            return and_(*parts) if node.op == "and" else or_(*parts)
        if isinstance(node, ast.Unary) and node.op == "not":
            return not_(self.cond(node.operand, True))
        if isinstance(node, ast.Compare):
            return self.compare(node, strict)
        if isinstance(node, ast.IsNull):
            return self.is_null(node, strict)
        v = self.scalar(self.value(node), node)
        if v.known:
            return true() if v.const is True else false()
        if strict and v.nullable:
            return func.coalesce(type_coerce(v.expr, Boolean), false())
        return v.expr

    def compare(self, node: ast.Compare, strict: bool) -> ColumnElement[bool]:
        semi = self.semi_join(node, strict)
        if semi is not None:
            return semi
        op = node.op
        left_type, right_type = node.left.type, node.right.type
        assert left_type is not None and right_type is not None
        if op in ("in", "not in"):
            if right_type.kind == T.STRING:
                return self.substring(node.right, node.left, op == "not in", strict)
            return self.membership(node.left, node.right, op == "not in", strict)
        if op == "contains":
            if left_type.kind == T.LIST:
                return self.membership(node.right, node.left, False, strict)
            return self.substring(node.left, node.right, False, strict)
        left = self.scalar(self.value(node.left), node.left)
        right = self.scalar(self.value(node.right), node.right)
        if (left.known and left.const is None) or (right.known and right.const is None):
            return false()
        if op == "matches":
            return self.regex(node, left, right, strict)
        lx, rx = left.expr, right.expr
        if left_type.kind == T.STRING and op not in ("==", "!="):
            lx = lx if left.known else _CodePoints(lx)
            rx = rx if right.known else _CodePoints(rx)
        return self.guard(_CMP[op](lx, rx), [left, right], strict)

    def membership(self, item_node: ast.Expr, list_node: ast.Expr, negated: bool,
                   strict: bool) -> ColumnElement[bool]:
        item = self.scalar(self.value(item_node), item_node)
        if item.known and item.const is None:
            return false()
        values = self.constant(list_node)
        if values is None and isinstance(list_node, ast.ListLit):
            elems = [self.scalar(self.value(i), i) for i in list_node.items]
            exprs = [e.expr for e in elems if not (e.known and e.const is None)]
            if not exprs:
                return self._empty_membership(item, negated)
            found = func.coalesce(type_coerce(item.expr.in_(exprs), Boolean), false())
            if not negated:
                return found
            if item.nullable and not item.known:
                return and_(item.expr.is_not(None), not_(found))
            return not_(found)
        if values is None:
            values = self.value(list_node)
        if values.kind != "list" or not values.known:
            raise self.fail(list_node, f"'{_text(list_node)}' is a list field: lists stored in "
                            "records cannot be searched by a filter",
                            "test a record field against a list instead, e.g. "
                            "record.region.code in user.regions")
        if values.const is None:
            return false()
        items = [_param_value(v) for v in values.const if v is not None]
        items = [v for v in items if v is not None]
        if not items:
            return self._empty_membership(item, negated)
        if negated:
            return self.guard(item.expr.not_in(items), [item], strict)
        return self.guard(item.expr.in_(items), [item], strict)

    def _empty_membership(self, item: _Sql, negated: bool) -> ColumnElement[bool]:
        if not negated:
            return false()
        return item.expr.is_not(None) if item.nullable and not item.known else true()

    def substring(self, hay_node: ast.Expr, needle_node: ast.Expr, negated: bool,
                  strict: bool) -> ColumnElement[bool]:
        hay = self.scalar(self.value(hay_node), hay_node)
        needle = self.scalar(self.value(needle_node), needle_node)
        if (hay.known and hay.const is None) or (needle.known and needle.const is None):
            return false()
        if needle.known:
            pattern: Any = literal("%" + _like_escape(str(needle.const)) + "%", String())
        else:
            escaped = func.replace(func.replace(func.replace(
                needle.expr, "\\", "\\\\"), "%", "\\%"), "_", "\\_")
            pattern = literal("%", String()).concat(escaped).concat(literal("%", String()))
        found = _Substring(hay.expr, needle.expr, pattern)
        if negated:
            return self.guard(not_(found), [hay, needle], True)
        return self.guard(found, [hay, needle], strict)

    def regex(self, node: ast.Compare, text: _Sql, pattern: _Sql,
              strict: bool) -> ColumnElement[bool]:
        found = pattern_problem(str(pattern.const)) if pattern.known else None
        if found is not None:
            raise self.fail(node.right, *found)
        # SQLite's REGEXP function is called with NULLs too: test for them first.
        nulls = [v.expr.is_(None) for v in (text, pattern) if v.nullable and not v.known]
        match = text.expr.regexp_match(pattern.expr)
        if not nulls:
            return match
        guarded = type_coerce(case((or_(*nulls), null()), else_=match), Boolean)
        return func.coalesce(guarded, false()) if strict else guarded

    def is_null(self, node: ast.IsNull, strict: bool) -> ColumnElement[bool]:
        semi = self.semi_join(node, strict) if node.negated else None
        if semi is not None:
            return semi
        v = self.value(node.operand, geo_ok=True)
        if v.known:
            test: Any = true() if v.const is None else false()
        elif v.is_null is not None:
            test = v.is_null
        elif not v.nullable:
            test = false()
        else:
            test = v.expr.is_(None)
        return not_(test) if node.negated else test

    def semi_join(self, node: ast.Compare | ast.IsNull, strict: bool
                  ) -> ColumnElement[bool] | None:
        """``record.ref.f <cmp> value`` as ``ref IN (SELECT id FROM target WHERE f <cmp> value)``.

        Valid because every comparison (and ``is not null``) is false on a null
        operand: a null or soft-deleted reference fails both forms alike.
        """
        if isinstance(node, ast.IsNull):
            sides: list[tuple[ast.Expr, ast.Expr | None]] = [(node.operand, None)]
        else:
            sides = [(node.left, node.right), (node.right, node.left)]
        for side, other in sides:
            if not (isinstance(side, ast.Path) and side.root == self.record_root
                    and len(side.steps) >= 2 and side.steps[1].name != "id"):
                continue
            if other is not None and self.depends(other):
                continue
            f = self.field(self.entity, side.steps[0].name, side)
            target = f.reference or ""
            if f.kind != "reference" or target not in self.entities:
                continue
            alias = self.alias(target, side)
            inner_side = replace(side, steps=side.steps[1:])
            if isinstance(node, ast.IsNull):
                inner: ast.Expr = replace(node, operand=inner_side)
            elif side is node.left:
                inner = replace(node, left=inner_side)
            else:
                inner = replace(node, right=inner_side)
            sub = self.with_record(self.entities[target], alias)
            where = sub.cond(inner, strict=False)
            column = self.table.c[f.name]
            found = column.in_(select(alias.c.id).where(*self.reachable(target, alias), where))
            return self.guard(found, [_Sql(column)], strict)
        return None

    # -- values
    def value(self, node: ast.Expr, geo_ok: bool = False) -> _Sql:
        """``node`` as an SQL value (booleans two-valued, except nullable fields)."""
        known = self.constant(node)
        if known is not None:
            return known
        if isinstance(node, ast.Path):
            v = self.path(node)
        elif isinstance(node, ast.Binary) and node.op not in ("and", "or"):
            v = self.arith(node)
        elif isinstance(node, ast.Unary) and node.op == "neg":
            operand = self.scalar(self.value(node.operand), node.operand)
            null = operand.known and operand.const is None
            v = operand if null else _Sql(-operand.expr, operand.nullable, operand.integer)
        elif isinstance(node, ast.Binary | ast.Unary | ast.Compare | ast.IsNull):
            v = _Sql(self.cond(node, True), nullable=False)
        elif isinstance(node, ast.IfExpr):
            v = self.if_expr(node)
        elif isinstance(node, ast.Call):
            v = self.call(node)
        elif isinstance(node, ast.ListLit):
            raise self.fail(node, "a list of record fields can only be used on the right of "
                            "'in' / 'not in'")
        else:
            raise self.fail(node, f"'{_text(node)}' cannot be used in a filter")
        return v if geo_ok or v.kind != "geo" else self.scalar(v, node)

    def path(self, node: ast.Path) -> _Sql:
        if node.root != self.record_root:
            return self.bound_path(node)
        if not node.steps:
            return _Sql(self.table.c.id, nullable=False, integer=True)
        return self.columns(self.entity, self.table, node.steps, node)

    def columns(self, entity: EntityDef, table: FromClause, steps: tuple[ast.PathStep, ...],
                node: ast.Path) -> _Sql:
        f = self.field(entity, steps[0].name, node)
        if len(steps) == 1:
            return self.column(table, f, node)
        target = f.reference or ""
        if f.kind != "reference" or target not in self.entities:
            raise self.fail(node, f"'{f.name}' is not a reference")
        return self.through(target, table.c[f.name], steps[1:], node)

    def through(self, target: str, ref: Any, steps: tuple[ast.PathStep, ...],
                node: ast.Path) -> _Sql:
        """A field of the record ``ref`` (an id expression) points at, as a scalar subquery."""
        if len(steps) == 1 and steps[0].name == "id":
            return _Sql(ref, integer=True)
        alias = self.alias(target, node)
        inner = self.columns(self.entities[target], alias, steps, node)
        sub = select(inner.expr).where(alias.c.id == ref, *self.reachable(target, alias))
        return _Sql(sub.scalar_subquery(), integer=inner.integer, kind=inner.kind)

    def column(self, table: FromClause, f: FieldDef, node: ast.Path) -> _Sql:
        if f.kind == "geo":
            lat, lng = table.c[f"{f.name}_lat"], table.c[f"{f.name}_lng"]
            present = case((and_(lat.is_not(None), lng.is_not(None)), literal(1)), else_=null())
            return _Sql(present, kind="geo", is_null=or_(lat.is_(None), lng.is_(None)))
        if f.kind in ("list", "attachment"):
            what = "a list" if f.kind == "list" else "an attachment"
            raise self.fail(node, f"'{_text(node)}' is {what} field: filters cannot test it "
                            "in the database",
                            "filter on string, number, enum, date or reference fields; "
                            "keep list tests (skills, tags) in rules")
        integer = f.kind in ("integer", "reference") or f.name == "id"
        return _Sql(table.c[f.name], nullable=f.name != "id", integer=integer)

    def bound_path(self, node: ast.Path) -> _Sql:
        """A path on a bound root that goes through an unresolved reference."""
        current: Any = self.roots[node.root]
        for i, step in enumerate(node.steps):
            if isinstance(current, RefView) and step.name != "id":
                rid = literal(current.get("id"), BigInteger())
                return self.through(current.target, rid, node.steps[i:], node)
            if current is None:
                break
            current = current.get(step.name)
        return _bind(current, node.type)

    def arith(self, node: ast.Binary) -> _Sql:
        lt, rt = node.left.type, node.right.type
        assert lt is not None and rt is not None
        if {lt.kind, rt.kind} & {T.DATETIME, T.DATE}:
            raise self.fail(node, "date and time arithmetic on record fields cannot run in "
                            "the database", "keep the field alone on one side and compute the "
                            "other: record.due < now() + 2h")
        left = self.scalar(self.value(node.left), node.left)
        right = self.scalar(self.value(node.right), node.right)
        if (left.known and left.const is None) or (right.known and right.const is None):
            return _bind(None, node.type)
        op = node.op
        nonzero = right.known and bool(right.const)
        divisor = right.expr if nonzero else func.nullif(right.expr, 0)
        nullable = left.nullable or right.nullable or (op in ("/", "%") and not nonzero)
        if op == "+" and lt.kind == T.STRING:
            return _Sql(left.expr.concat(right.expr), nullable)
        if op in ("+", "-", "*"):
            expr = _CMP_ARITH[op](left.expr, right.expr)
            return _Sql(expr, nullable, left.integer and right.integer)
        if op == "/":
            # Explicit casts: true division as Python does it, with no dialect's own rules.
            return _Sql(cast(left.expr, Float).op("/")(cast(divisor, Float)), nullable)
        if not (left.integer and right.integer):
            raise self.fail(node, "'%' in a filter needs whole numbers on both sides",
                            "the remainder of decimals differs between databases; use "
                            "integer fields")
        # SQL's % truncates toward zero; the DSL's (Python's) floors: shift into range.
        return _Sql(((left.expr % divisor) + right.expr) % divisor, nullable, True)

    def if_expr(self, node: ast.IfExpr) -> _Sql:
        then = self.scalar(self.value(node.then), node.then)
        other = self.scalar(self.value(node.otherwise), node.otherwise)
        if then.known and other.known and then.const is None and other.const is None:
            return then  # an untyped CASE of NULLs would puzzle PostgreSQL's type inference
        expr = case((self.cond(node.cond, False), then.expr), else_=other.expr)
        return _Sql(expr, then.nullable or other.nullable, then.integer and other.integer)

    def call(self, node: ast.Call) -> _Sql:
        name = node.name
        if name == "coalesce":
            args = [self.scalar(self.value(a), a) for a in node.args]
            args = [a for a in args if not (a.known and a.const is None)]
            if not args:
                return _bind(None, node.type)
            if len(args) == 1:
                return args[0]
            return _Sql(func.coalesce(*(a.expr for a in args)),
                        all(a.nullable for a in args), all(a.integer for a in args))
        if name in ("lower", "upper", "abs", "len") and len(node.args) == 1:
            arg_type = node.args[0].type
            if name == "len" and arg_type is not None and arg_type.kind == T.LIST:
                raise self.fail(node, "len() of a list field cannot run in the database",
                                "keep list tests in rules")
            arg = self.scalar(self.value(node.args[0]), node.args[0])
            if arg.known and arg.const is None:
                return arg
            sql_name = "length" if name == "len" else name
            return _Sql(getattr(func, sql_name)(arg.expr), arg.nullable,
                        name == "len" or (name == "abs" and arg.integer))
        raise self.fail(node, f"{name}() has no database form, so a filter cannot apply it to "
                        "record fields", "filters may call " + ", ".join(SQL_FUNCTIONS) +
                        " on fields; other functions only on user values and literals")


_CMP_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul}


def _text(node: ast.Expr) -> str:
    if isinstance(node, ast.Path):
        return node.dotted()
    if isinstance(node, ast.Call):
        return node.name + "(...)"
    return "this value"


def _param_value(value: Any) -> Any:
    """A runtime value as the column stores it (ids, seconds, UTC datetimes)."""
    if isinstance(value, Mapping):
        return ref_id(value)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _sql_type(value: Any) -> TypeEngine[Any] | None:
    if isinstance(value, bool):
        return Boolean()
    if isinstance(value, int):
        return BigInteger()
    if isinstance(value, float):
        return Float()
    if isinstance(value, str):
        return String()
    if isinstance(value, datetime):
        return DateTime(timezone=True)
    if isinstance(value, date):
        return Date()
    return None


def _bind(value: Any, t: T.Type | None) -> _Sql:
    """A Python-evaluated value as a bound parameter (or a constant the caller inspects)."""
    kind = t.kind if t is not None else None
    if value is None:  # NULL fits any operation, whole-number ones included
        return _Sql(null(), nullable=True, integer=True, const=None,
                    kind="list" if kind == T.LIST else "geo" if kind == T.GEO else "scalar")
    if kind == T.LIST or isinstance(value, list | tuple | set | frozenset):
        return _Sql(null(), nullable=False, const=list(value), kind="list")
    if kind == T.GEO:
        return _Sql(null(), nullable=False, const=value, kind="geo")
    stored = _param_value(value)
    if stored is None:
        return _Sql(null(), nullable=True, integer=True, const=None)
    sql_type = _sql_type(stored)
    if sql_type is None:
        return _Sql(null(), nullable=False, const=value, kind="geo")
    integer = isinstance(stored, int) and not isinstance(stored, bool)
    return _Sql(literal(stored, sql_type), nullable=False, integer=integer, const=stored)


def _entity_of(table: FromClause, tables: Mapping[str, FromClause]) -> str:
    for name, candidate in tables.items():
        if candidate is table:
            return name
    base = getattr(table, "element", table)
    name = str(getattr(base, "name", ""))
    return name[len(ENTITY_PREFIX):] if name.startswith(ENTITY_PREFIX) else name


def to_sql(expr: ast.Expr, *, record_root: str, table: FromClause,
           tables: Mapping[str, FromClause], entities: Mapping[str, EntityDef],
           params: Mapping[str, Mapping[str, Any]], now: datetime,
           record_entity: str | None = None, root_entities: Mapping[str, str] | None = None,
           file: str | None = None, strict: bool = False,
           hop: Hop | None = None) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the rows for which the checked condition is true.

    ``record_root`` names the root that is the row (``record`` in row filters,
    the entity name in ``?filter=``); ``table`` is its table (or an alias: the
    clause refers to it, so select from the same object) and ``record_entity``
    its entity (default: found in ``tables`` or from the ``e_`` table name).
    ``tables`` maps entity names to tables for reference paths; ``entities``
    holds every EntityDef involved, including the pseudo-entities of bound roots.
    ``params`` binds the other roots to values (``{"user": {...}}``); each is an
    ``entities[root_entities.get(root, root)]`` record whose references may be
    ids or dicts. ``now`` is what ``now()`` returns. ``file`` is reported in
    errors. The clause does not exclude soft-deleted rows of ``table`` itself:
    add ``deleted_at IS NULL``. With ``strict=False`` it may be NULL where the
    DSL says false (equivalent in WHERE, AND, OR); pass ``strict=True`` to negate it.
    ``hop(entity, alias)`` adds a condition on every row a path reads through a
    reference (the caller's row filter, for ``?filter=``): a row failing it
    reads as missing, so its fields are null, like a soft-deleted one.

    Raises :class:`UnsupportedFilter` (a DslError, with position and hint) for
    constructs without a faithful SQL form, EvaluationError when a user value
    cannot be evaluated, ValueError when a table or EntityDef is missing.
    """
    entity_name = record_entity or _entity_of(table, tables)
    entity = entities.get(entity_name)
    if entity is None:
        raise ValueError(f"to_sql: unknown record entity '{entity_name}'; pass record_entity=")
    binder = RecordBinder(entities)
    roots: dict[str, Any] = {}
    for root, data in params.items():
        root_entity = entities.get((root_entities or {}).get(root, root))
        if root_entity is None:
            raise ValueError(f"to_sql: no EntityDef for bound root '{root}' in entities=")
        roots[root] = binder.bind(root_entity, data)
    for path in _paths(expr):
        if path.root != record_root and path.root not in roots:
            names = ", ".join([record_root, *roots])
            raise _unsupported(path, f"'{path.root}' cannot be used in a filter",
                               f"a filter can use: {names}", file)
    if expr.type is None or expr.type.kind != T.BOOL:
        raise _unsupported(expr, "a filter must be a condition (true or false)",
                           "compare the value, e.g. record.priority == \"P1\"", file)
    translator = _Translator(record_root=record_root, entity=entity, table=table, tables=tables,
                             entities=entities, roots=roots, now=now, file=file, hop=hop)
    return translator.cond(expr, strict)


# ------------------------------------------------------------------ ?filter= strings


def _rename_root(node: ast.Expr, old: str, new: str) -> ast.Expr:
    if isinstance(node, ast.Path):
        return replace(node, root=new) if node.root == old else node
    if isinstance(node, ast.Call):
        return replace(node, args=tuple(_rename_root(a, old, new) for a in node.args))
    if isinstance(node, ast.Unary | ast.IsNull):
        return replace(node, operand=_rename_root(node.operand, old, new))
    if isinstance(node, ast.Binary | ast.Compare):
        return replace(node, left=_rename_root(node.left, old, new),
                       right=_rename_root(node.right, old, new))
    if isinstance(node, ast.IfExpr):
        return replace(node, cond=_rename_root(node.cond, old, new),
                       then=_rename_root(node.then, old, new),
                       otherwise=_rename_root(node.otherwise, old, new))
    if isinstance(node, ast.ListLit):
        return replace(node, items=tuple(_rename_root(i, old, new) for i in node.items))
    return node


def parse_filter(app: App, entity: str, text: str) -> ast.Expr:
    """Parse and type-check an API ``?filter=`` condition over ``entity`` records.

    The root is the entity name (``work_order.priority == "P1"``); ``record.``
    is accepted as an alias and rewritten to it, so the result is checked and
    rooted at ``entity``: pass ``record_root=entity`` to :func:`to_sql`.
    Raises DslError carrying the first error (message, 1-based line and column
    in ``text``, hint; ``file`` is :data:`FILTER_FILE`).
    """
    if entity not in app.entities:
        raise DslError(f"unknown entity '{entity}'", hint=did_you_mean(entity, app.entities))
    bag = DiagnosticBag()
    bag.add_source(SourceFile(FILTER_FILE, text))
    node = parse_expression(text, Origin(FILTER_FILE), bag)
    checked: ast.Expr | None = None
    if node is not None:
        record_type = T.entity_type(entity)
        roots = {entity: record_type}
        roots.setdefault("record", record_type)
        checker = ExprChecker(Scope(roots, dict(app.entities)), bag, FILTER_FILE)
        checked = checker.check_condition(node, "a filter")
    errors = [d for d in bag.sorted() if d.is_error]
    if errors or checked is None:
        first = errors[0]
        raise DslError(first.message, file=FILTER_FILE, line=first.line or None,
                       column=first.column or None, hint=first.hint, path=FILTER_FILE)
    return _rename_root(checked, "record", entity) if entity != "record" else checked
