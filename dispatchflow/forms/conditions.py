"""Form conditions (``visible_if`` / ``required_if``) on the server and in the browser.

On the server each condition is compiled once per app version with
:func:`dispatchflow.dsl.codegen.compile_expression` (boolean position, so null
counts as false) and called with ``(record, now)``.

In the browser there is no ``eval``: :func:`to_client` turns a checked
expression into a small JSON tree that ``static/dispatchflow-forms.js``
interprets against the current form values on every change. The tree covers
what a form needs and nothing more::

    {"lit": value}                          string, number, true/false, null
    {"dur": seconds}                        a duration literal (durations are seconds)
    {"field": name, "kind": field kind}     one step from the form's own entity
    {"list": [node, ...]}                   a list literal
    {"op": "and" | "or" | "not" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in"
           | "contains" | "is null" | "is not null" | "if", "args": [node, ...]}

Anything else (builtin calls such as ``now()``, arithmetic, ``matches``,
distances, paths through a reference or to another root) makes the whole
condition server-only: :func:`to_client` returns None, the browser leaves the
field as the server rendered it, and the server decides on submission. The
interpreter follows the null semantics of ``dsl/codegen.py``: a comparison with
a null operand is false (``in``/``not in``/``contains`` included), and in a
boolean position null counts as false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..dsl import ast
from ..dsl.codegen import compile_expression
from ..dsl.compiler import App
from ..dsl.model import EntityDef
from .schema import FormLayout, form_layout, version_cached

Condition = Callable[[Mapping[str, Any], datetime], Any]

_CLIENT_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"})


@dataclass(frozen=True)
class FieldConditions:
    """The compiled and serialised conditions of one form field (None where absent).

    ``*_client`` is None also when the condition exists but is server-only; see
    ``*_expr`` to tell the two apart.
    """

    visible_expr: ast.Expr | None
    required_expr: ast.Expr | None
    visible: Condition | None
    required: Condition | None
    visible_client: dict[str, Any] | None
    required_client: dict[str, Any] | None


def form_conditions(app: App, form_name: str) -> dict[str, FieldConditions]:
    """Conditions of every form field that has one, by field name (built once per version).

    Raises UnknownNameError for an unknown form.
    """
    layout = form_layout(app, form_name)
    return version_cached(app, ("conditions", form_name), lambda: _build(layout))


def _build(layout: FormLayout) -> dict[str, FieldConditions]:
    out: dict[str, FieldConditions] = {}
    entity = layout.entity
    for ff in layout.fields.values():
        if ff.visible_if is None and ff.required_if is None:
            continue
        out[ff.name] = FieldConditions(
            ff.visible_if, ff.required_if,
            _compile(ff.visible_if, entity.name, f"<form {layout.name}.{ff.name}.visible_if>"),
            _compile(ff.required_if, entity.name,
                     f"<form {layout.name}.{ff.name}.required_if>"),
            None if ff.visible_if is None else to_client(ff.visible_if, entity),
            None if ff.required_if is None else to_client(ff.required_if, entity))
    return out


def _compile(expr: ast.Expr | None, root: str, filename: str) -> Condition | None:
    if expr is None:
        return None
    return compile_expression(expr, [root], filename, boolean=True)


def holds(condition: Condition | None, record: Mapping[str, Any], now: datetime) -> bool | None:
    """Evaluate a compiled condition; None when there is none or it failed.

    Conditions run on validated values, so a failure means an unexpected value
    shape (e.g. a half-valid record); callers then keep the field visible and
    do not require it.
    """
    if condition is None:
        return None
    try:
        return bool(condition(record, now))
    except Exception:  # noqa: BLE001 - generated code over caller data; fail open, see docs
        return None


# ------------------------------------------------------------------ browser form


def to_client(expr: ast.Expr, entity: EntityDef) -> dict[str, Any] | None:
    """The JSON tree of a checked condition for the browser, or None if server-only."""
    try:
        return _node(expr, entity)
    except _ServerOnly:
        return None


class _ServerOnly(Exception):
    """Raised inside :func:`to_client` when a node has no browser form."""


def _node(n: ast.Expr, entity: EntityDef) -> dict[str, Any]:
    if isinstance(n, ast.Literal):
        if n.kind == "duration" and isinstance(n.value, timedelta):
            return {"dur": n.value.total_seconds()}
        if n.kind in ("number", "string", "bool", "null"):
            return {"lit": n.value}
        raise _ServerOnly
    if isinstance(n, ast.Path):
        if n.root != entity.name or len(n.steps) != 1:
            raise _ServerOnly
        fdef = entity.fields.get(n.steps[0].name)
        if fdef is None:
            raise _ServerOnly
        return {"field": fdef.name, "kind": fdef.kind}
    if isinstance(n, ast.ListLit):
        return {"list": [_node(i, entity) for i in n.items]}
    if isinstance(n, ast.Unary) and n.op == "not":
        return {"op": "not", "args": [_node(n.operand, entity)]}
    if isinstance(n, ast.Binary) and n.op in ("and", "or"):
        return {"op": n.op, "args": [_node(n.left, entity), _node(n.right, entity)]}
    if isinstance(n, ast.Compare) and n.op in _CLIENT_COMPARE:
        return {"op": n.op, "args": [_node(n.left, entity), _node(n.right, entity)]}
    if isinstance(n, ast.IsNull):
        return {"op": "is not null" if n.negated else "is null",
                "args": [_node(n.operand, entity)]}
    if isinstance(n, ast.IfExpr):
        return {"op": "if", "args": [_node(n.cond, entity), _node(n.then, entity),
                                     _node(n.otherwise, entity)]}
    raise _ServerOnly


def client_fields(tree: Mapping[str, Any] | None) -> set[str]:
    """Names of the fields a serialised condition reads."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "field" in node:
                found.add(str(node["field"]))
            for child in node.get("args", ()) or node.get("list", ()):
                walk(child)
    walk(tree)
    return found
