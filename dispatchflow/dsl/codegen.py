"""Generate Python source from checked AST and compile it once.

Why generated source: measured on this machine, ``compile()``-d source runs at
~1.0x a hand-written lambda where a closure tree reaches ~0.7x and a tree walk
~0.13x (see STACK-NOTES). Safety: source is built only from checked AST nodes.
Root names and field names are identifiers the grammar already restricted to
``[A-Za-z_][A-Za-z0-9_]*``; they appear mangled (``r_<root>``) or through
``repr``. Every literal goes through ``repr`` or into a constants table. No
text the author wrote is pasted into the source, and the compiled code runs
with a minimal ``__builtins__``.

Null semantics (docs/dsl.md): a comparison with a null operand is false;
arithmetic with null gives null; in a boolean position null counts as false;
division or modulo by zero gives null.
"""

from __future__ import annotations

import builtins as _py_builtins
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from . import ast
from . import types as T
from .builtins import REGISTRY
from .regex import regex

NOW = "_now"

_SAFE_BUILTINS = {name: getattr(_py_builtins, name) for name in (
    "len", "min", "max", "abs", "bool", "any", "all", "dict", "list", "tuple", "frozenset",
    "isinstance", "None", "True", "False")}

_COUNTER = itertools.count()


def root_param(name: str) -> str:
    """The Python parameter name of a DSL root (``work_order`` -> ``r_work_order``)."""
    assert name.isidentifier(), name
    return "r_" + name


def ref_id(value: Any) -> Any:
    """The id of a reference value, whether the record is resolved (a dict) or not."""
    if isinstance(value, dict):
        return value.get("id")
    return value


class TableBinding(Protocol):
    """How generated code reads a decision table's outputs (see rules/ruleset.py)."""

    def emit_path(self, path: ast.Path, emitter: Emitter) -> str: ...


@dataclass
class Emitter:
    """Turns checked expressions into Python expression source.

    ``overrides`` maps ``(root, field)`` to a local variable name, used by rule
    sets so that a rule reads the value an earlier rule set.
    """

    consts: dict[str, Any] = field(default_factory=dict)
    overrides: dict[tuple[str, str], str] = field(default_factory=dict)
    # Table roots: table name -> how to read its outputs. The caller (a rule
    # set's generator) decides how a path like ``sla_targets.x`` is evaluated.
    tables: dict[str, TableBinding] = field(default_factory=dict)
    # Common subexpressions already held in a local: structurally equal nodes
    # (positions and types do not take part in equality) emit the local.
    cse: dict[ast.Expr, str] = field(default_factory=dict)
    _tmp: itertools.count = field(default_factory=itertools.count)

    def const(self, value: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def tmp(self) -> str:
        return f"_t{next(self._tmp)}"

    def namespace(self) -> dict[str, Any]:
        """Globals for the compiled code: constants, helpers and builtin impls."""
        ns: dict[str, Any] = {"__builtins__": _SAFE_BUILTINS, "_ref_id": ref_id,
                              "_regex": regex}
        for name, fn in REGISTRY.items():
            ns["_f_" + name] = fn.impl
        ns.update(self.consts)
        return ns

    # -- expressions
    def emit(self, node: ast.Expr) -> str:
        if self.cse and node in self.cse:
            return self.cse[node]
        return getattr(self, "_" + type(node).__name__)(node)

    def hoist(self, node: ast.Expr) -> str:
        """A statement computing ``node`` into a local that later emits reuse."""
        local = f"_c{len(self.cse)}"
        line = f"{local} = {self.emit(node)}"
        self.cse[node] = local
        return line

    def truthy(self, node: ast.Expr) -> str:
        """Source for ``node`` in a boolean position (null counts as false)."""
        src = self.emit(node)
        if node.type is not None and node.type.nullable:
            return f"({src} is True)"
        return src

    def _Literal(self, n: ast.Literal) -> str:
        if isinstance(n.value, timedelta):
            return self.const(n.value)
        return repr(n.value)

    def _Path(self, n: ast.Path) -> str:
        steps = list(n.steps)
        src = root_param(n.root)
        if n.root in self.tables:
            return self.tables[n.root].emit_path(n, self)
        if steps and (n.root, steps[0].name) in self.overrides:
            src = self.overrides[(n.root, steps[0].name)]
            steps = steps[1:]
        elif steps:
            src = f"{src}.get({steps[0].name!r})"
            steps = steps[1:]
        for step in steps:
            t = self.tmp()
            src = f"(None if ({t} := {src}) is None else {t}.get({step.name!r}))"
        return src

    def current_record(self, root: str) -> str:
        """The record as the rules so far left it (earlier sets merged in)."""
        sets = [(f, local) for (r, f), local in sorted(self.overrides.items()) if r == root]
        if not sets:
            return root_param(root)
        merged = ", ".join(f"{f!r}: {local}" for f, local in sets)
        return f"{{**{root_param(root)}, {merged}}}"

    def _Call(self, n: ast.Call) -> str:
        if n.name == "now":
            return NOW
        args = [self.emit(a) for a in n.args]
        nullable = any(a.type is not None and a.type.nullable for a in n.args)
        if n.name in ("min", "max") and not nullable:
            return f"{n.name}({', '.join(args)})"
        if n.name == "coalesce":
            src = args[-1]
            for a in reversed(args[:-1]):
                t = self.tmp()
                src = f"({t} if ({t} := {a}) is not None else {src})"
            return src
        if n.name == "len" and not nullable:
            return f"len({args[0]})"
        if n.name == "contains_any" and isinstance(n.args[1], ast.ListLit) and \
                all(isinstance(i, ast.Literal) for i in n.args[1].items):
            # Lower-case the literal words once, at compile time.
            words = [str(_literal_value(i)).lower() for i in n.args[1].items]
            text_src = args[0]
            if n.args[0].type is not None and n.args[0].type.kind == T.STRING and words:
                # Unrolled: lower-case the text once (bound inside the first test),
                # then a chain of substring tests.
                hay = self.tmp()
                lowered = f"{hay}.lower()" if nullable else f"{text_src}.lower()"
                tests = " or ".join([f"{words[0]!r} in ({hay} := {lowered})"] +
                                    [f"{w!r} in {hay}" for w in words[1:]])
                if nullable:
                    return f"(({hay} := {text_src}) is not None and ({tests}))"
                return f"({tests})"
            return f"_f_contains_any({text_src}, {self.const(tuple(words))})"
        return f"_f_{n.name}({', '.join(args)})"

    def _Unary(self, n: ast.Unary) -> str:
        if n.op == "not":
            return f"(not {self.truthy(n.operand)})"
        src = self.emit(n.operand)
        if n.operand.type is not None and n.operand.type.nullable:
            t = self.tmp()
            return f"(None if ({t} := {src}) is None else -{t})"
        return f"(-{src})"

    def _Binary(self, n: ast.Binary) -> str:
        if n.op in ("and", "or"):
            return f"({self.truthy(n.left)} {n.op} {self.truthy(n.right)})"
        left, right = self.emit(n.left), self.emit(n.right)
        ln = n.left.type is not None and n.left.type.nullable
        rn = n.right.type is not None and n.right.type.nullable
        guards = []
        if ln:
            t = self.tmp()
            guards.append(f"({t} := {left}) is None")
            left = t
        if rn:
            t = self.tmp()
            guards.append(f"({t} := {right}) is None")
            right = t
        if n.op in ("/", "%") and not (isinstance(n.right, ast.Literal) and n.right.value):
            if not rn:
                t = self.tmp()
                guards.append(f"not ({t} := {right})")
                right = t
            else:
                guards.append(f"not {right}")
        core = f"({left} {n.op} {right})"
        if guards:
            return f"(None if {' or '.join(guards)} else {core})"
        return core

    def _Compare(self, n: ast.Compare) -> str:
        left, right = self.emit(n.left), self.emit(n.right)
        lt, rt = n.left.type, n.right.type
        assert lt is not None and rt is not None
        if lt.kind == T.ENTITY and n.op in ("==", "!="):
            left, right = f"_ref_id({left})", f"_ref_id({right})"
        if n.op in ("in", "not in") and isinstance(n.right, ast.ListLit) and \
                all(isinstance(i, ast.Literal) and not isinstance(i.value, timedelta)
                    for i in n.right.items):
            right = self.const(frozenset(_literal_value(i) for i in n.right.items))
            rt = T.T_STRING_LIST
        guards = []
        if lt.nullable:
            t = self.tmp()
            guards.append(f"({t} := {left}) is not None")
            left = t
        if rt.nullable:
            t = self.tmp()
            guards.append(f"({t} := {right}) is not None")
            right = t
        if n.op == "contains":
            core = f"({right} in {left})"
        elif n.op == "matches":
            if isinstance(n.right, ast.Literal):
                core = f"{self.const(regex(n.right.value))}.search({left})"
            else:
                core = f"_regex({right}).search({left})"
        else:
            core = f"({left} {n.op} {right})"
        if guards:
            return f"({' and '.join(guards)} and {core})"
        return core

    def _IsNull(self, n: ast.IsNull) -> str:
        return f"(({self.tmp()} := {self.emit(n.operand)}) is {'not ' if n.negated else ''}None)"

    def _IfExpr(self, n: ast.IfExpr) -> str:
        return f"({self.emit(n.then)} if {self.truthy(n.cond)} else {self.emit(n.otherwise)})"

    def _ListLit(self, n: ast.ListLit) -> str:
        return "[" + ", ".join(self.emit(i) for i in n.items) + "]"


def repeated_calls(exprs: Iterable[ast.Expr]) -> list[ast.Call]:
    """Builtin calls that occur more than once across ``exprs`` (first-seen order).

    Builtins are pure, so such a call can be computed once into a local
    (``Emitter.hoist``): e.g. a dispatch policy's ``distance_km(...)`` used by a
    ``require`` and a ``score``.
    """
    counts: dict[ast.Expr, int] = {}

    def walk(node: ast.Expr) -> None:
        if isinstance(node, ast.Call) and node.name != "now":
            counts[node] = counts.get(node, 0) + 1
        for child in ast.children(node):
            walk(child)
    for expr in exprs:
        walk(expr)
    return [n for n, c in counts.items() if c > 1 and isinstance(n, ast.Call)]


def _contains(expr: ast.Expr, target: ast.Expr) -> bool:
    return expr == target or any(_contains(c, target) for c in ast.children(expr))


def hoist_before(emitter: Emitter, pending: list[ast.Call], exprs: Iterable[ast.Expr]) -> list[str]:
    """Hoist each pending repeated call that ``exprs`` use (removing it from ``pending``)."""
    lines = []
    items = list(exprs)
    for call in list(pending):
        if any(_contains(e, call) for e in items):
            lines.append(emitter.hoist(call))
            pending.remove(call)
    return lines


def _literal_value(node: ast.Expr) -> Any:
    assert isinstance(node, ast.Literal)
    return node.value


def compile_function(name: str, params: Iterable[str], body: list[str], emitter: Emitter,
                     filename: str) -> Callable[..., Any]:
    """Compile ``def name(params): body`` (body lines without indentation) once.

    The source is generated from checked AST only (see module docs); this is the
    single place where generated code becomes a function.
    """
    fname = f"{name}_{next(_COUNTER)}"
    src = f"def {fname}({', '.join(params)}):\n" + "".join(f"    {line}\n" for line in body)
    code = compile(src, filename, "exec")
    ns = emitter.namespace()
    exec(code, ns)  # noqa: S102 - generated from the checked AST, never from user text
    fn = ns[fname]
    fn.__dispatchflow_source__ = src
    return fn


def compile_expression(node: ast.Expr, roots: list[str], filename: str = "<expr>",
                       boolean: bool = False) -> Callable[..., Any]:
    """A function ``f(*root_values, now)`` evaluating a checked expression.

    ``boolean`` evaluates it in a boolean position (null counts as false).
    """
    emitter = Emitter()
    src = emitter.truthy(node) if boolean else emitter.emit(node)
    params = [root_param(r) for r in roots] + [NOW]
    return compile_function("_expr", params, [f"return {src}"], emitter, filename)
