"""The DSL's abstract syntax: immutable dataclasses with source positions.

The parser builds these from Lark trees; the checker returns copies with
``type`` filled in; the code generator reads only checked nodes. Nothing
downstream sees a Lark tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .source import Span
from .types import Type


@dataclass(frozen=True)
class Node:
    """Base of every expression node. ``span`` is in the file the text came from."""

    span: Span = field(compare=False)


@dataclass(frozen=True)
class Expr(Node):
    """An expression; ``type`` is None until the checker has run."""

    type: Type | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class Literal(Expr):
    """A literal: number, string, bool, null, duration (timedelta) or distance (km float)."""

    kind: str  # number | string | bool | null | duration | distance
    value: Any


@dataclass(frozen=True)
class PathStep:
    name: str
    safe: bool  # written with ?. (null acknowledged)
    span: Span = field(compare=False)


@dataclass(frozen=True)
class Path(Expr):
    """A field path: a root name (``work_order``) and steps (``.customer``, ``?.tier``)."""

    root: str
    root_span: Span = field(compare=False)
    steps: tuple[PathStep, ...]

    def dotted(self) -> str:
        return ".".join([self.root, *(s.name for s in self.steps)])


@dataclass(frozen=True)
class Call(Expr):
    """A call to a builtin function."""

    name: str
    name_span: Span = field(compare=False)
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary(Expr):
    """``-x`` (op ``neg``) or ``not x`` (op ``not``)."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    """Arithmetic (``+ - * / %``) and logic (``and or``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    """``== != < <= > >=``, ``in``, ``not in``, ``contains``, ``matches``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsNull(Expr):
    """``x is null`` / ``x is not null``."""

    operand: Expr
    negated: bool


@dataclass(frozen=True)
class IfExpr(Expr):
    """``if cond then a else b``."""

    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True)
class ListLit(Expr):
    """``[a, b, c]``."""

    items: tuple[Expr, ...]


def children(node: Expr) -> tuple[Expr, ...]:
    """Direct sub-expressions of a node, in source order."""
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary | Compare):
        return (node.left, node.right)
    if isinstance(node, IsNull):
        return (node.operand,)
    if isinstance(node, IfExpr):
        return (node.cond, node.then, node.otherwise)
    if isinstance(node, ListLit):
        return node.items
    return ()


def conjuncts(node: Expr) -> list[Expr]:
    """Split ``a and b and c`` into ``[a, b, c]`` (for traces of which part failed)."""
    if isinstance(node, Binary) and node.op == "and":
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


# ------------------------------------------------------------------ .rules items


@dataclass(frozen=True)
class SetAction:
    target: Path
    value: Expr
    span: Span = field(compare=False)


@dataclass(frozen=True)
class TagAction:
    record: str
    tag: str
    remove: bool
    span: Span = field(compare=False)


@dataclass(frozen=True)
class EmitAction:
    entity: str
    event: str
    span: Span = field(compare=False)


@dataclass(frozen=True)
class NotifyAction:
    notification: str
    span: Span = field(compare=False)


@dataclass(frozen=True)
class StartFlowAction:
    flow: str
    span: Span = field(compare=False)


@dataclass(frozen=True)
class DispatchAction:
    policy: str | None
    span: Span = field(compare=False)


Action = SetAction | TagAction | EmitAction | NotifyAction | StartFlowAction | DispatchAction


@dataclass(frozen=True)
class RuleDecl:
    name: str
    salience: int
    condition: Expr
    actions: tuple[Action, ...]
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)


@dataclass(frozen=True)
class RulesetDecl:
    name: str
    entity: str
    event: str
    hit: str  # all | first
    rules: tuple[RuleDecl, ...]
    file: str
    span: Span = field(compare=False)
    trigger_span: Span = field(compare=False)
    hit_span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RequireClause:
    condition: Expr
    label: str
    span: Span = field(compare=False)


@dataclass(frozen=True)
class ScoreClause:
    value: Expr
    guard: Expr | None
    label: str
    span: Span = field(compare=False)


@dataclass(frozen=True)
class TiebreakClause:
    value: Expr
    descending: bool
    span: Span = field(compare=False)


@dataclass(frozen=True)
class OfferClause:
    strategy: str  # one_at_a_time | broadcast | grab_pool
    top_k: int
    accept_within: Expr
    retries: int
    escalate_to_role: str | None
    span: Span = field(compare=False)
    role_span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PolicyDecl:
    name: str
    entity: str
    pool: str
    requires: tuple[RequireClause, ...]
    scores: tuple[ScoreClause, ...]
    tiebreaks: tuple[TiebreakClause, ...]
    offer: OfferClause | None
    file: str
    span: Span = field(compare=False)
    header_span: Span = field(compare=False)


@dataclass(frozen=True)
class RulesFile:
    path: str
    rulesets: tuple[RulesetDecl, ...]
    policies: tuple[PolicyDecl, ...]


# ------------------------------------------------------------------ table cells


@dataclass(frozen=True)
class CellTest:
    """One unary test of a decision-table cell.

    ``op`` is ``==`` (plain value), a comparison operator, or ``range`` (with
    ``low``/``high`` and inclusivity flags). ``negated`` wraps ``not(...)``.
    """

    op: str
    value: Expr | None = None
    low: Expr | None = None
    high: Expr | None = None
    low_closed: bool = True
    high_closed: bool = True


@dataclass(frozen=True)
class Cell:
    """A whole cell: ``-`` (any), or tests joined by ``,`` (any may match), maybe negated."""

    tests: tuple[CellTest, ...]
    negated: bool = False
    any: bool = False
    span: Span | None = field(default=None, compare=False)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"15m"`` -> 15 minutes. Units: s, m, h, d, w. Raises ValueError otherwise."""
    text = text.strip()
    unit = text[-1:]
    if unit not in DURATION_UNITS:
        raise ValueError(f"not a duration: {text!r} (use a number with s, m, h, d or w)")
    return timedelta(seconds=float(text[:-1]) * DURATION_UNITS[unit])
