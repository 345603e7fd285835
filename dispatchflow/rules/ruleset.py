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
from .table_access import UNSET, GenericTable, LazyTable, fields_read


@dataclass(frozen=True)
class RuleTrace:
    """Whether a rule fired; if not, the first part of its condition that was false."""

    rule: str
    matched: bool
    failed_condition: str | None = None
    line: int = 0


@dataclass(slots=True)
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
    _tables: dict[str, LazyTable | GenericTable]
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
                return RulesetResult(self.decl.name, effects, fired)
            if self._traced is None:
                self._traced = _generate(self.decl, self.ordered, True, self._tables)
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


def compile_ruleset(decl: ast.RulesetDecl, source_text: str | None = None,
                    tables: dict[str, LazyTable | GenericTable] | None = None
                    ) -> CompiledRuleset:
    """Order the rules by salience and generate the rule set's function.

    ``tables`` binds the decision tables the rules may read
    (``sla_targets.response_within``); see ``rules/table_access.py``.
    """
    ordered = sorted(decl.rules, key=lambda r: -r.salience)  # stable: file order on ties
    texts = [[_text(c, source_text) for c in ast.conjuncts(r.condition)] for r in ordered]
    bindings = dict(tables or {})
    return CompiledRuleset(decl, ordered, texts, _generate(decl, ordered, False, bindings),
                           bindings)


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
              tables: dict[str, LazyTable | GenericTable]) -> Callable[..., Any]:
    ent = decl.entity
    rec = root_param(ent)
    emitter = Emitter(tables=dict(tables))
    lazy = [b for b in tables.values() if isinstance(b, LazyTable)]
    emitter.consts["_UNSET"] = UNSET
    # A set of field f makes the lazy tables that read f stale.
    stale_after = {b.local: fields_read(b.table) for b in lazy}
    consts = {"_SetField": fx.SetField, "_AddTag": fx.AddTag, "_RemoveTag": fx.RemoveTag,
              "_EmitEvent": fx.EmitEvent, "_Notify": fx.Notify, "_StartFlow": fx.StartFlow,
              "_RequestDispatch": fx.RequestDispatch}
    emitter.consts.update(consts)
    # Fields set by one rule and read later (directly, or through a table's
    # inputs) live in locals; see module docs.
    read = _fields_read(ent, ordered).union(*(fields_read(b.table) for b in tables.values()))
    set_fields = {a.target.steps[0].name for r in ordered for a in r.actions
                  if isinstance(a, ast.SetAction) and a.target.steps} & read
    body = ["_fired = []", "_fx = []"]
    if traced:
        body.append("_failed = {}")
    body.extend(f"{b.local} = _UNSET" for b in lazy)
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
        body.append(f"    _fired.append({i if traced else name})")
        for action in rule.actions:
            body.extend("    " + line for line in _action_lines(action, ent, name, emitter))
            if isinstance(action, ast.SetAction):
                fname = action.target.steps[0].name
                body.extend(f"    {local} = _UNSET" for local, reads in stale_after.items()
                            if fname in reads)
        if decl.hit == "first":
            body.append("    return (_fired, _fx" + (", _failed)" if traced else ")"))
    body.append("return (_fired, _fx" + (", _failed)" if traced else ")"))
    return compile_function(f"_ruleset_{decl.name}", [rec, NOW], body, emitter,
                            f"<ruleset {decl.name} in {decl.file}>")


def _fields_read(ent: str, rules: list[ast.RuleDecl]) -> set[str]:
    """First-level fields of the record that any condition or set value reads."""
    names: set[str] = set()

    def walk(node: ast.Expr) -> None:
        if isinstance(node, ast.Path) and node.root == ent and node.steps:
            names.add(node.steps[0].name)
        for child in ast.children(node):
            walk(child)
    for rule in rules:
        walk(rule.condition)
        for action in rule.actions:
            if isinstance(action, ast.SetAction):
                walk(action.value)
    return names


def _action_lines(action: ast.Action, ent: str, rule: str, emitter: Emitter) -> list[str]:
    if isinstance(action, ast.SetAction):
        fname = action.target.steps[0].name
        local = emitter.overrides.get((ent, fname))
        if local is None:  # never read by a rule: no need to keep it in a local
            return [f"_fx.append(_SetField({ent!r}, {fname!r}, {emitter.emit(action.value)}, "
                    f"{rule}))"]
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
