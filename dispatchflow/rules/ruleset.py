"""Compile and run rule sets.

A rule set compiles into one generated Python function (see
``dsl/codegen.py`` for why and how safely): rules in salience order (highest
first, then file order), each rule's condition inline, its actions appending
effects. A ``set`` is visible to the rules after it (the field is read from a
local the set updated); rules do not re-fire (no forward chaining loop).
``hit first`` stops after the first rule that fires.

A second, traced variant evaluates each condition conjunct by conjunct and
records, for each rule, whether it matched and which part failed first; it is
compiled on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..dsl import ast
from ..dsl.codegen import NOW, Emitter, compile_function, root_param
from ..errors import EvaluationError
from . import effects as fx


@dataclass(frozen=True)
class RuleTrace:
    """Whether a rule fired; if not, the first part of its condition that was false."""

    rule: str
    matched: bool
    failed_condition: str | None = None
    line: int = 0


@dataclass(frozen=True)
class RulesetResult:
    ruleset: str
    effects: list[fx.Effect]
    fired: list[str]
    trace: list[RuleTrace] | None = None


@dataclass
class CompiledRuleset:
    """A rule set ready to run: ``run(record, now)``."""

    decl: ast.RulesetDecl
    ordered: list[ast.RuleDecl]
    condition_texts: list[list[str]]
    _fast: Callable[..., Any]
    _links: _TableLinks
    _traced: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.decl.name

    def run(self, record: dict[str, Any], now: datetime, trace: bool = False) -> RulesetResult:
        """Evaluate on the triggering record (a dict of runtime values) at time ``now``.

        Raises :class:`EvaluationError` naming the rule set if evaluation fails
        (for example a required field missing from ``record``).
        """
        try:
            if not trace:
                fired, effects = self._fast(record, now)
                return RulesetResult(self.decl.name, effects,
                                     [self.ordered[i].name for i in fired])
            if self._traced is None:
                self._traced = _generate(self.decl, self.ordered, True, self._links)
            fired, effects, failures = self._traced(record, now)
        except EvaluationError:
            raise
        except (TypeError, AttributeError, KeyError, ValueError, re.error) as exc:
            raise EvaluationError(f"ruleset {self.decl.name} failed on this record: {exc}",
                                  file=self.decl.file, line=self.decl.span.line,
                                  hint="check that the record has every required field") from exc
        traces = []
        fired_set = set(fired)
        for i, rule in enumerate(self.ordered):
            failed = failures.get(i)
            traces.append(RuleTrace(rule.name, i in fired_set,
                                    self.condition_texts[i][failed] if failed is not None
                                    else None, rule.span.line))
        return RulesetResult(self.decl.name, effects, [self.ordered[i].name for i in fired],
                             traces)


TableLookup = Callable[[str, dict[str, Any], datetime], "dict[str, Any] | None"]


def compile_ruleset(decl: ast.RulesetDecl, source_text: str | None = None,
                    tables: TableLookup | None = None,
                    table_names: frozenset[str] = frozenset()) -> CompiledRuleset:
    """Order the rules by salience and generate the rule set's function.

    ``tables`` evaluates a decision table named in ``table_names`` on a record,
    for rules that read table outputs (``sla_targets.response_within``).
    """
    ordered = sorted(decl.rules, key=lambda r: -r.salience)  # stable: file order on ties
    texts = [[_text(c, source_text) for c in ast.conjuncts(r.condition)] for r in ordered]
    links = _TableLinks(tables, table_names)
    return CompiledRuleset(decl, ordered, texts, _generate(decl, ordered, False, links), links)


@dataclass(frozen=True)
class _TableLinks:
    lookup: TableLookup | None
    names: frozenset[str]


def _text(node: ast.Expr, source: str | None) -> str:
    if source is None:
        return f"condition at line {node.span.line}"
    lines = source.split("\n")
    s = node.span
    if s.line == s.end_line:
        return lines[s.line - 1][s.column - 1:s.end_column - 1]
    parts = [lines[s.line - 1][s.column - 1:]] + lines[s.line:s.end_line - 1] + \
        [lines[s.end_line - 1][:s.end_column - 1]]
    return " ".join(" ".join(parts).split())


def _generate(decl: ast.RulesetDecl, ordered: list[ast.RuleDecl], traced: bool,
              links: _TableLinks) -> Callable[..., Any]:
    ent = decl.entity
    rec = root_param(ent)
    emitter = Emitter(tables={name: ent for name in links.names})
    emitter.consts["_table"] = links.lookup
    consts = {"_SetField": fx.SetField, "_AddTag": fx.AddTag, "_RemoveTag": fx.RemoveTag,
              "_EmitEvent": fx.EmitEvent, "_Notify": fx.Notify, "_StartFlow": fx.StartFlow,
              "_RequestDispatch": fx.RequestDispatch}
    emitter.consts.update(consts)
    # Fields set by one rule and read by a later one live in locals (see module docs).
    set_fields = {a.target.steps[0].name for r in ordered for a in r.actions
                  if isinstance(a, ast.SetAction) and a.target.steps}
    body = ["_fired = []", "_fx = []"]
    if traced:
        body.append("_failed = {}")
    for fname in sorted(set_fields):
        local = f"_s_{fname}"
        body.append(f"{local} = {rec}.get({fname!r})")
        emitter.overrides[(ent, fname)] = local
    for i, rule in enumerate(ordered):
        name = emitter.const(rule.name)
        if traced:
            parts = ast.conjuncts(rule.condition)
            body.append("_ok = True")
            for j, part in enumerate(parts):
                indent = "    " * j
                body.append(f"{indent}if not {emitter.truthy(part)}:")
                body.append(f"{indent}    _ok = False; _failed[{i}] = {j}")
                if j < len(parts) - 1:
                    body.append(f"{indent}else:")
            body.append("if _ok:")
        else:
            body.append(f"if {emitter.truthy(rule.condition)}:")
        body.append(f"    _fired.append({i})")
        for action in rule.actions:
            body.extend("    " + line for line in _action_lines(action, ent, name, emitter))
        if decl.hit == "first":
            body.append("    return (_fired, _fx" + (", _failed)" if traced else ")"))
    body.append("return (_fired, _fx" + (", _failed)" if traced else ")"))
    return compile_function(f"_ruleset_{decl.name}", [rec, NOW], body, emitter,
                            f"<ruleset {decl.name} in {decl.file}>")


def _action_lines(action: ast.Action, ent: str, rule: str, emitter: Emitter) -> list[str]:
    if isinstance(action, ast.SetAction):
        fname = action.target.steps[0].name
        local = emitter.overrides[(ent, fname)]
        return [f"{local} = {emitter.emit(action.value)}",
                f"_fx.append(_SetField({ent!r}, {fname!r}, {local}, {rule}))"]
    if isinstance(action, ast.TagAction):
        ctor = "_RemoveTag" if action.remove else "_AddTag"
        return [f"_fx.append({ctor}({ent!r}, {action.tag!r}, {rule}))"]
    if isinstance(action, ast.EmitAction):
        return [f"_fx.append(_EmitEvent({ent!r}, {action.event!r}, {rule}))"]
    if isinstance(action, ast.NotifyAction):
        return [f"_fx.append(_Notify({action.notification!r}, {rule}))"]
    if isinstance(action, ast.StartFlowAction):
        return [f"_fx.append(_StartFlow({action.flow!r}, {rule}))"]
    if isinstance(action, ast.DispatchAction):
        return [f"_fx.append(_RequestDispatch({action.policy!r}, {rule}))"]
    raise AssertionError(action)
