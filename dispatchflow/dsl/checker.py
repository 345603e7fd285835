"""Static type checking of DSL expressions against the bundle's entities.

:class:`Scope` says which root names an expression may use (``work_order``,
``technician``, ``user``, ``value``...) and what they are. :class:`ExprChecker`
resolves every path through references, checks builtin calls, operator operand
types, units (duration, distance vs number) and enum literals, and returns a copy
of the tree with every node's ``type`` filled in. Problems go to the
:class:`~dispatchflow.dsl.diagnostics.DiagnosticBag`; a node that failed gets the
``error`` type so one mistake is reported once, not at every enclosing node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import ast
from . import types as T
from .builtins import REGISTRY
from .diagnostics import DiagnosticBag
from .model import EntityDef, field_type
from .regex import REGEX_HINT
from .regex import problem as regex_problem
from .suggest import did_you_mean, one_of
from .wording import a

_ARITH_RESULTS: dict[tuple[str, str, str], str] = {}
for _k in (T.NUMBER, T.DURATION, T.DISTANCE):
    _ARITH_RESULTS[("+", _k, _k)] = _k
    _ARITH_RESULTS[("-", _k, _k)] = _k
_ARITH_RESULTS.update({
    ("+", T.STRING, T.STRING): T.STRING,
    ("+", T.DATETIME, T.DURATION): T.DATETIME, ("+", T.DURATION, T.DATETIME): T.DATETIME,
    ("+", T.DATE, T.DURATION): T.DATE, ("-", T.DATE, T.DURATION): T.DATE,
    ("-", T.DATETIME, T.DURATION): T.DATETIME, ("-", T.DATETIME, T.DATETIME): T.DURATION,
    ("*", T.NUMBER, T.NUMBER): T.NUMBER, ("*", T.DURATION, T.NUMBER): T.DURATION,
    ("*", T.NUMBER, T.DURATION): T.DURATION, ("*", T.DISTANCE, T.NUMBER): T.DISTANCE,
    ("*", T.NUMBER, T.DISTANCE): T.DISTANCE,
    ("/", T.NUMBER, T.NUMBER): T.NUMBER, ("/", T.DURATION, T.NUMBER): T.DURATION,
    ("/", T.DURATION, T.DURATION): T.NUMBER, ("/", T.DISTANCE, T.NUMBER): T.DISTANCE,
    ("/", T.DISTANCE, T.DISTANCE): T.NUMBER, ("%", T.NUMBER, T.NUMBER): T.NUMBER,
})

_UNIT_HINTS = {
    T.DURATION: "write the number with a unit: 30m, 2h, 1d",
    T.DISTANCE: "write the number with a unit: 5km",
}


@dataclass
class Scope:
    """What an expression may refer to.

    ``roots`` maps a root name to its type (usually an entity record);
    ``entities`` lets paths walk through references.
    """

    roots: dict[str, T.Type]
    entities: dict[str, EntityDef]
    extra_hint: dict[str, str] = field(default_factory=dict)
    # Names of items that already failed to compile: using them is not reported
    # again (one mistake, one diagnostic).
    silent: set[str] = field(default_factory=set)


class ExprChecker:
    """Type-checks expressions of one file; see module docs."""

    def __init__(self, scope: Scope, bag: DiagnosticBag, file: str) -> None:
        self.scope = scope
        self.bag = bag
        self.file = file

    # -- entry points
    def check(self, node: ast.Expr) -> ast.Expr:
        """Return ``node`` with types filled in (``error`` where it failed)."""
        method = getattr(self, "_" + type(node).__name__)
        return method(node)

    def check_condition(self, node: ast.Expr, what: str = "a condition") -> ast.Expr:
        """Check a boolean position (``when``, ``require``, guards)."""
        typed = self.check(node)
        t = typed.type
        assert t is not None
        if not t.is_error and t.kind != T.BOOL:
            self.bag.error("E3013", f"{what} must be a boolean, got {t}", self.file, node.span,
                           _bool_hint(typed))
        elif t.nullable and not t.null_ok:
            self.bag.warning("W4001", f"{what} may be null; null counts as false", self.file,
                             node.span, "make it explicit: compare with '== true' or use "
                             "coalesce(..., false)")
        return typed

    def check_value(self, node: ast.Expr, expected: T.Type, what: str,
                    warn_nullable: bool = True) -> ast.Expr:
        """Check a value that must fit ``expected`` (a set target, an accept window...)."""
        typed = self.check(node)
        t = typed.type
        assert t is not None
        if t.is_error or expected.is_error:
            return typed
        if t.kind == T.NULL:
            if not expected.nullable:
                self.bag.error("E3021", f"{what} cannot be null", self.file, node.span)
            return typed
        if not _assignable(t, expected):
            hint = _UNIT_HINTS.get(expected.kind) if t.kind == T.NUMBER else None
            code = "E3012" if hint else "E3021"
            if hint is None and isinstance(node, ast.Literal) and node.kind == "string" and \
                    _looks_like(node.value, expected.kind):
                hint = "write the value without quotes"
            self.bag.error(code, f"{what} must be {a(expected.base_name())}, got "
                           f"{a(t.base_name())}", self.file, node.span, hint)
            return typed
        self._check_enum_literal(typed, expected, name=what)
        if warn_nullable and t.nullable and not t.null_ok and not expected.nullable:
            self.bag.warning("W4001", f"{what} may be null", self.file, node.span,
                             "give a fallback with coalesce(value, default)")
        return typed

    # -- nodes
    def _Literal(self, n: ast.Literal) -> ast.Expr:
        kinds = {"number": T.T_NUMBER, "string": T.T_STRING, "bool": T.T_BOOL,
                 "null": T.T_NULL, "duration": T.T_DURATION, "distance": T.T_DISTANCE}
        return replace(n, type=kinds[n.kind])

    def _Path(self, n: ast.Path) -> ast.Expr:
        roots = self.scope.roots
        if n.root not in roots and n.root in self.scope.silent:
            return replace(n, type=T.T_ERROR)
        if n.root not in roots:
            hint = did_you_mean(n.root, roots) or self._root_hint(n.root)
            self.bag.error("E3002", f"unknown name '{n.root}'", self.file, n.root_span, hint)
            return replace(n, type=T.T_ERROR)
        current = roots[n.root]
        for step in n.steps:
            if current.kind != T.ENTITY:
                self.bag.error("E3001", f"'{step.name}': {current.base_name()} has no fields",
                               self.file, step.span)
                return replace(n, type=T.T_ERROR)
            entity = self.scope.entities.get(current.entity or "")
            if entity is None:
                return replace(n, type=T.T_ERROR)
            fdef = entity.fields.get(step.name)
            if fdef is None:
                hint = did_you_mean(step.name, entity.fields) or \
                    f"{entity.name} has: {one_of(entity.fields)}"
                self.bag.error("E3001", f"unknown field '{step.name}' on {entity.name}",
                               self.file, step.span, hint)
                return replace(n, type=T.T_ERROR)
            nxt = field_type(fdef)
            if current.nullable:
                nxt = nxt.with_null(True, current.null_ok or step.safe)
            elif step.safe:
                nxt = nxt.with_null(nxt.nullable, True)
            current = nxt
        return replace(n, type=current)

    def _root_hint(self, name: str) -> str | None:
        if name in self.scope.extra_hint:
            return self.scope.extra_hint[name]
        for root, t in self.scope.roots.items():
            ent = self.scope.entities.get(t.entity or "") if t.kind == T.ENTITY else None
            if ent and name in ent.fields:
                return f"fields are reached through their record: write {root}.{name}"
        if self.scope.roots:
            return f"names available here: {one_of(self.scope.roots)}"
        return None

    def _Call(self, n: ast.Call) -> ast.Expr:
        args = tuple(self.check(a) for a in n.args)
        if n.name == "now":
            if args:
                self.bag.error("E3004", "now() takes no arguments", self.file, n.span)
            return replace(n, args=args, type=T.T_DATETIME)
        fn = REGISTRY.get(n.name)
        if fn is None:
            hint = did_you_mean(n.name, [*REGISTRY, "now"]) or \
                "see docs/dsl.md for the builtin functions"
            self.bag.error("E3003", f"unknown function '{n.name}'", self.file, n.name_span, hint)
            return replace(n, args=args, type=T.T_ERROR)
        arg_types = [a.type for a in args if a.type is not None]
        if any(t.is_error for t in arg_types):
            return replace(n, args=args, type=T.T_ERROR)
        result = fn.typer(arg_types)
        if isinstance(result, str):
            code = "E3004" if result.startswith("takes") else "E3005"
            self.bag.error(code, f"{n.name}() {result}", self.file, n.span,
                           f"signature: {fn.signature}")
            return replace(n, args=args, type=T.T_ERROR)
        return replace(n, args=args, type=result)

    def _Unary(self, n: ast.Unary) -> ast.Expr:
        operand = self.check(n.operand)
        t = operand.type
        assert t is not None
        if t.is_error:
            return replace(n, operand=operand, type=T.T_ERROR)
        if n.op == "not":
            if t.kind != T.BOOL:
                self.bag.error("E3013", f"'not' needs a boolean, got {t}", self.file,
                               n.operand.span, _bool_hint(operand))
                return replace(n, operand=operand, type=T.T_ERROR)
            return replace(n, operand=operand, type=T.T_BOOL)
        if t.kind not in (T.NUMBER, T.DURATION, T.DISTANCE):
            self.bag.error("E3010", f"cannot negate {t}", self.file, n.span)
            return replace(n, operand=operand, type=T.T_ERROR)
        return replace(n, operand=operand, type=t)

    def _Binary(self, n: ast.Binary) -> ast.Expr:
        left, right = self.check(n.left), self.check(n.right)
        lt, rt = left.type, right.type
        assert lt is not None and rt is not None
        node = replace(n, left=left, right=right)
        if lt.is_error or rt.is_error:
            return replace(node, type=T.T_ERROR)
        if n.op in ("and", "or"):
            for side, t in ((n.left, lt), (n.right, rt)):
                if t.kind != T.BOOL:
                    self.bag.error("E3013", f"'{n.op}' needs booleans, got {t}", self.file,
                                   side.span, _bool_hint(left if side is n.left else right))
                    return replace(node, type=T.T_ERROR)
            return replace(node, type=T.T_BOOL)
        if lt.kind == T.NULL or rt.kind == T.NULL:
            self.bag.error("E3010", f"'{n.op}' with null is always null", self.file, n.span,
                           "use coalesce(value, default) to supply a value")
            return replace(node, type=T.T_ERROR)
        result = _ARITH_RESULTS.get((n.op, lt.kind, rt.kind))
        if result is None:
            hint = None
            if {lt.kind, rt.kind} in ({T.NUMBER, T.DURATION}, {T.NUMBER, T.DISTANCE}):
                unit = lt.kind if lt.kind != T.NUMBER else rt.kind
                hint = _UNIT_HINTS[unit]
                code = "E3012"
            elif {lt.kind, rt.kind} in ({T.NUMBER, T.DATETIME}, {T.NUMBER, T.DATE}) and \
                    n.op in ("+", "-"):
                hint = "add or subtract a duration: " + _UNIT_HINTS[T.DURATION].split(": ")[1]
                code = "E3012"
            else:
                code = "E3010"
            self.bag.error(code, f"cannot apply '{n.op}' to {lt.base_name()} and "
                           f"{rt.base_name()}", self.file, n.span, hint)
            return replace(node, type=T.T_ERROR)
        out = T.Type(result)
        if n.op in ("/", "%") and not _nonzero_literal(right):
            # Division by zero yields null (documented), so the result is nullable but
            # acknowledged: warning on every ratio would only be noise.
            out = out.with_null(True, True)
        return replace(node, type=T.merge_null(out, lt, rt) if not out.nullable else
                       out.with_null(True, all(t.null_ok for t in (lt, rt) if t.nullable)))

    def _Compare(self, n: ast.Compare) -> ast.Expr:
        left, right = self.check(n.left), self.check(n.right)
        lt, rt = left.type, right.type
        assert lt is not None and rt is not None
        node = replace(n, left=left, right=right, type=T.T_BOOL)
        if lt.is_error or rt.is_error:
            return replace(node, type=T.T_ERROR)
        op = n.op
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if lt.kind == T.NULL or rt.kind == T.NULL:
                self.bag.error("E3014", f"comparison '{op}' with null is always false",
                               self.file, n.span,
                               "use 'is null' or 'is not null' to test for a missing value")
                return replace(node, type=T.T_ERROR)
            if not T.same_kind(lt, rt):
                return self._mismatch(node, op, lt, rt, left, right)
            if op not in ("==", "!=") and lt.kind not in T.ORDERABLE:
                self.bag.error("E3010", f"cannot order {lt.base_name()} values with '{op}'",
                               self.file, n.span)
                return replace(node, type=T.T_ERROR)
            self._check_enum_literal(right, lt, left)
            self._check_enum_literal(left, rt, right)
            return node
        if op in ("in", "not in"):
            if rt.kind == T.LIST:
                if rt.elem is not None and not T.same_kind(lt, rt.elem) and \
                        not (rt.elem.kind == T.NULL):
                    return self._mismatch(node, op, lt, rt, left, right)
                if isinstance(right, ast.ListLit):
                    for item in right.items:
                        self._check_enum_literal(item, lt, left)
                return node
            if rt.kind == T.STRING and lt.kind == T.STRING:
                return node
            self.bag.error("E3010", f"'{op}' needs a list (or text) on the right, got {rt}",
                           self.file, n.right.span)
            return replace(node, type=T.T_ERROR)
        if op == "contains":
            if lt.kind == T.LIST and (lt.elem is None or T.same_kind(lt.elem, rt)):
                return node
            if lt.kind == T.STRING and rt.kind == T.STRING:
                return node
            self.bag.error("E3010", f"'contains' needs a list or text on the left and a "
                           f"matching value on the right, got {lt} and {rt}", self.file, n.span)
            return replace(node, type=T.T_ERROR)
        if op == "matches":
            if lt.kind != T.STRING or rt.kind != T.STRING:
                self.bag.error("E3010", f"'matches' needs text on both sides, got {lt} and {rt}",
                               self.file, n.span)
                return replace(node, type=T.T_ERROR)
            if isinstance(right, ast.Literal):
                found = regex_problem(right.value)
                if found is not None:
                    self._bad_pattern(right, *found)
                    return replace(node, type=T.T_ERROR)
            return node
        raise AssertionError(op)

    def _bad_pattern(self, literal: ast.Literal, reason: str, pos: int | None) -> None:
        """E3015 for a pattern no engine reads, E3018 for one only a backtracking one does."""
        try:
            re.compile(literal.value)
        except re.error as exc:  # Python's message, with its position, reads best
            self.bag.error("E3015", f"invalid regular expression: {exc}", self.file,
                           literal.span)
            return
        where = f" (character {pos + 1} of the pattern)" if pos is not None else ""
        self.bag.error("E3018", f"'matches' cannot run this pattern: {reason}{where}",
                       self.file, literal.span, REGEX_HINT)

    def _mismatch(self, node: ast.Expr, op: str, lt: T.Type, rt: T.Type,
                  left: ast.Expr, right: ast.Expr) -> ast.Expr:
        kinds = {lt.kind, rt.kind} if rt.kind != T.LIST else {lt.kind, (rt.elem or rt).kind}
        if kinds in ({T.NUMBER, T.DURATION}, {T.NUMBER, T.DISTANCE}):
            unit = (kinds - {T.NUMBER}).pop()
            self.bag.error("E3012", f"cannot compare {lt.base_name()} with {rt.base_name()}",
                           self.file, node.span, _UNIT_HINTS[unit])
        else:
            self.bag.error("E3010", f"cannot compare {lt.base_name()} with {rt.base_name()} "
                           f"using '{op}'", self.file, node.span)
        return replace(node, type=T.T_ERROR)

    def _IsNull(self, n: ast.IsNull) -> ast.Expr:
        operand = self.check(n.operand)
        return replace(n, operand=operand, type=T.T_BOOL)

    def _IfExpr(self, n: ast.IfExpr) -> ast.Expr:
        cond = self.check_condition(n.cond, "the 'if' condition")
        then, other = self.check(n.then), self.check(n.otherwise)
        tt, ot = then.type, other.type
        assert tt is not None and ot is not None
        node = replace(n, cond=cond, then=then, otherwise=other)
        if tt.is_error or ot.is_error or (cond.type and cond.type.is_error):
            return replace(node, type=T.T_ERROR)
        common = T.unify(tt, ot)
        if common is None:
            self.bag.error("E3016", f"'then' gives {tt.base_name()} but 'else' gives "
                           f"{ot.base_name()}", self.file, n.span,
                           "both branches must give the same kind of value")
            return replace(node, type=T.T_ERROR)
        return replace(node, type=common)

    def _ListLit(self, n: ast.ListLit) -> ast.Expr:
        items = tuple(self.check(i) for i in n.items)
        node = replace(n, items=items)
        elem: T.Type = T.T_NULL
        for item in items:
            assert item.type is not None
            if item.type.is_error:
                return replace(node, type=T.T_ERROR)
            merged = T.unify(elem, item.type)
            if merged is None:
                self.bag.error("E3017", f"list mixes {elem.base_name()} and "
                               f"{item.type.base_name()}", self.file, item.span)
                return replace(node, type=T.T_ERROR)
            elem = merged
        return replace(node, type=T.Type(T.LIST, elem=elem.non_null()))

    # -- enum literals
    def _check_enum_literal(self, node: ast.Expr, other: T.Type,
                            other_node: ast.Expr | None = None, name: str | None = None) -> None:
        """Report ``priority == "P9"`` when P9 is not a value of the enum."""
        values = other.enum_values
        if values is None or not isinstance(node, ast.Literal) or node.kind != "string":
            return
        if node.value not in values:
            if name is None:
                name = other_node.dotted() if isinstance(other_node, ast.Path) else "the enum"
            hint = did_you_mean(node.value, values) or f"allowed: {one_of(values, 20)}"
            self.bag.error("E3011", f"'{node.value}' is not a value of {name} "
                           f"({', '.join(values)})", self.file, node.span, hint)


def _assignable(value: T.Type, target: T.Type) -> bool:
    if value.kind == T.LIST and target.kind == T.LIST:
        return value.elem is None or target.elem is None or value.elem.kind in (
            target.elem.kind, T.NULL)
    return T.same_kind(value, target)


def _looks_like(text: str, kind: str) -> bool:
    """Whether quoted text would be a valid literal of ``kind`` without its quotes."""
    if kind == T.BOOL:
        return text in ("true", "false")
    if kind == T.NUMBER:
        try:
            float(text)
        except ValueError:
            return False
        return True
    return False


def _nonzero_literal(node: ast.Expr) -> bool:
    if not isinstance(node, ast.Literal):
        return False
    value = node.value
    return bool(value.total_seconds()) if node.kind == "duration" else bool(value)


def _bool_hint(node: ast.Expr) -> str | None:
    t = node.type
    if t is None or t.is_error:
        return None
    if t.kind in (T.STRING, T.NUMBER):
        return "compare it, e.g. x == \"value\" or x > 0"
    if t.kind == T.LIST:
        return "test membership with 'in' / 'contains', or len(x) > 0"
    return None
