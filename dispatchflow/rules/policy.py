"""Dispatch policies compiled to filter and score callables.

``rules/dispatch`` (candidate retrieval, offers, batch matching) consumes a
:class:`CompiledPolicy`. Per candidate it offers:

- ``evaluate(order, candidate, now) -> (failed, score)``: one generated function
  running the ``require`` filters in order (``failed`` is the index of the first
  one that fails, or -1) and, for eligible candidates, the total score;
- ``explain(order, candidate, now)``: every filter's result and every score
  term's contribution, for the decision record;
- ``accept_within(order, now)``: the offer's accept window (a timedelta).

Score terms that evaluate to null count as 0; a term with an ``if`` guard
counts only when the guard holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import total_ordering
from typing import Any

from ..dsl import ast
from ..dsl.codegen import (
    NOW,
    Emitter,
    compile_expression,
    compile_function,
    hoist_before,
    repeated_calls,
    root_param,
)
from ..errors import EvaluationError


@dataclass(frozen=True)
class Explanation:
    """Why a candidate is in or out, and how its score is made up."""

    eligible: bool
    excluded_by: str | None
    filters: list[tuple[str, bool]]
    terms: list[tuple[str, float]]
    score: float | None
    tiebreak: tuple[Any, ...] = ()


@total_ordering
class _Descending:
    """Wraps a value so that sorting ascending orders it descending (any orderable type)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value

    def __repr__(self) -> str:
        return f"desc({self.value!r})"


class CompiledPolicy:
    """A dispatch policy ready to rank candidates; see module docs."""

    def __init__(self, decl: ast.PolicyDecl) -> None:
        self.decl = decl
        self.name = decl.name
        roots = [decl.entity, decl.pool]
        params = [root_param(r) for r in roots] + [NOW]
        emitter = Emitter()
        emitter.consts["_fail"] = self._failure
        body = ["try:"]
        # Calls shared between clauses (typically distance_km) are computed once,
        # just before the first clause that needs them.
        pending = repeated_calls([r.condition for r in decl.requires] +
                                 [e for s in decl.scores for e in (s.value, s.guard) if e])
        for i, req in enumerate(decl.requires):
            body.extend("    " + line for line in hoist_before(emitter, pending, [req.condition]))
            body.append(f"    if not {emitter.truthy(req.condition)}:")
            body.append(f"        return ({i}, None)")
        score_exprs = [e for s in decl.scores for e in (s.value, s.guard) if e]
        body.extend("    " + line for line in hoist_before(emitter, pending, score_exprs))
        body.append(f"    return (-1, {self._score_source(emitter) or '0'})")
        # A try block costs nothing on Python 3.11+ unless it raises.
        # The generated code runs with restricted builtins: the exception classes are
        # passed in as a constant, not looked up by name.
        body.append("except _eval_errors as _exc:")
        body.append("    _fail(_exc)")
        emitter.consts["_eval_errors"] = (TypeError, AttributeError, KeyError, ValueError,
                                          re.error)
        self.evaluate: Callable[[dict, dict, datetime], tuple[int, float | None]] = \
            compile_function(f"_policy_{decl.name}", params, body, emitter,
                             f"<policy {decl.name} in {decl.file}>")
        self.filter_labels = [r.label for r in decl.requires]
        self.term_labels = [s.label for s in decl.scores]
        self._filters = [compile_expression(r.condition, roots, boolean=True)
                         for r in decl.requires]
        self._terms = [self._term_fn(s, roots) for s in decl.scores]
        self._ties = [(compile_expression(t.value, roots), t.descending) for t in decl.tiebreaks]
        offer = decl.offer
        self._within = compile_expression(offer.accept_within, [decl.entity]) if offer else None

    def _failure(self, exc: Exception) -> None:
        raise EvaluationError(f"dispatch policy {self.decl.name} failed on this order/candidate:"
                              f" {exc}", file=self.decl.file, line=self.decl.span.line,
                              hint="check that the records have every required field") from exc

    def _score_source(self, emitter: Emitter) -> str:
        parts = []
        for s in self.decl.scores:
            value = emitter.emit(s.value)
            if s.value.type is not None and s.value.type.nullable:
                t = emitter.tmp()
                value = f"({t} if ({t} := {value}) is not None else 0)"
            if s.guard is not None:
                value = f"({value} if {emitter.truthy(s.guard)} else 0)"
            parts.append(value)
        return " + ".join(parts)

    @staticmethod
    def _term_fn(s: ast.ScoreClause, roots: list[str]) -> Callable[..., float]:
        value = compile_expression(s.value, roots)
        guard = compile_expression(s.guard, roots, boolean=True) if s.guard else None

        def term(order: dict, cand: dict, now: datetime) -> float:
            if guard is not None and not guard(order, cand, now):
                return 0.0
            v = value(order, cand, now)
            return 0.0 if v is None else float(v)
        return term

    def explain(self, order: dict, candidate: dict, now: datetime) -> Explanation:
        """Every filter result and score term for one candidate (slower than evaluate)."""
        filters = [(label, bool(f(order, candidate, now)))
                   for label, f in zip(self.filter_labels, self._filters, strict=True)]
        failed = next((label for label, ok in filters if not ok), None)
        terms = [(label, t(order, candidate, now))
                 for label, t in zip(self.term_labels, self._terms, strict=True)]
        eligible = failed is None
        return Explanation(eligible, failed, filters, terms,
                           sum(v for _, v in terms) if eligible else None,
                           self.tiebreak_key(order, candidate, now))

    def tiebreak_key(self, order: dict, candidate: dict, now: datetime) -> tuple[Any, ...]:
        """Sort key for equal scores (ascending sort; ``desc`` terms are negated)."""
        key: list[tuple[int, Any]] = []
        for fn, desc in self._ties:
            v = fn(order, candidate, now)
            if v is None:
                key.append((1, 0))
            else:
                if desc:
                    v = -v if isinstance(v, int | float) else _Descending(v)
                key.append((0, v))
        return tuple(key)

    def accept_within(self, order: dict, now: datetime) -> timedelta | None:
        """The accept window of an offer for ``order`` (None if the policy has no offer)."""
        return self._within(order, now) if self._within else None
