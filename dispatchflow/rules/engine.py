"""The rules engine of one compiled app: rule sets, tables and policies by name.

Compiles each item on first use and keeps it (an :class:`Engine` is built once
per app version and shared). ``run_event`` runs every rule set triggered by an
event, in file order, each seeing the record as the previous one left it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..dsl.compiler import App
from . import effects as fx
from .decision_table import CompiledTable, TableResult, compile_lookup
from .policy import CompiledPolicy
from .ruleset import CompiledRuleset, RulesetResult, compile_ruleset
from .table_access import GenericTable, LazyTable


class Engine:
    """Compiled rule sets, decision tables and dispatch policies of one App."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._rulesets: dict[str, CompiledRuleset] = {}
        self._tables: dict[str, CompiledTable] = {}
        self._policies: dict[str, CompiledPolicy] = {}

    def ruleset(self, name: str) -> CompiledRuleset:
        """The compiled rule set ``name`` (KeyError if there is none)."""
        compiled = self._rulesets.get(name)
        if compiled is None:
            decl = self.app.rulesets[name]
            compiled = compile_ruleset(decl, self.app.sources.get(decl.file),
                                       self._table_bindings(decl.entity))
            self._rulesets[name] = compiled
        return compiled

    def _table_bindings(self, entity: str) -> dict[str, LazyTable | GenericTable]:
        """How rule sets on ``entity`` read each decision table over it."""
        bindings: dict[str, LazyTable | GenericTable] = {}
        for table in self.app.tables.values():
            if table.entity != entity:
                continue
            fast = compile_lookup(table)
            bindings[table.name] = LazyTable(table, *fast) if fast else \
                GenericTable(table, self.table_outputs)
        return bindings

    def table(self, name: str) -> CompiledTable:
        compiled = self._tables.get(name)
        if compiled is None:
            compiled = self._tables[name] = CompiledTable(self.app.tables[name])
        return compiled

    def policy(self, name: str) -> CompiledPolicy:
        compiled = self._policies.get(name)
        if compiled is None:
            compiled = self._policies[name] = CompiledPolicy(self.app.policies[name])
        return compiled

    def compile_all(self) -> None:
        """Compile everything now (e.g. at start-up, so the first event pays nothing)."""
        for name in self.app.rulesets:
            self.ruleset(name)
        for name in self.app.tables:
            self.table(name)
        for name in self.app.policies:
            self.policy(name)

    def run_event(self, entity: str, event: str, record: dict[str, Any], now: datetime,
                  trace: bool = False) -> list[RulesetResult]:
        """Run every rule set on ``entity.event``; later ones see earlier sets."""
        results = []
        current = record
        for decl in self.app.rulesets_for(entity, event):
            result = self.ruleset(decl.name).run(current, now, trace=trace)
            results.append(result)
            sets = [e for e in result.effects if isinstance(e, fx.SetField)]
            if sets:
                current = dict(current)
                for e in sets:
                    current[e.field] = e.value
        return results

    def table_outputs(self, name: str, record: dict[str, Any],
                      now: datetime) -> dict[str, Any] | None:
        """A table's outputs as a dict (an aggregate as ``{output: value}``), or None."""
        table = self.table(name)
        result = table.evaluate(record, now)
        if table.table.aggregate:
            return {table.table.outputs[0].name: result.outputs}
        return result.outputs

    def evaluate_table(self, name: str, record: dict[str, Any], now: datetime) -> TableResult:
        return self.table(name).evaluate(record, now)
