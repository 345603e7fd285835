"""Run a bundle's own test cases (``tests/*.yaml``) and measure what they reach.

Each case gives records and an event (or names a rule set, table or policy) and
states the expected effects or outputs. The report lists pass/fail per case
with the reason, and which rules and table rows no case made fire: the
bundle's coverage. Cases without ``now`` run at a fixed instant
(:data:`DEFAULT_NOW`, in the app's timezone) so results never depend on the
wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..dsl.compiler import App
from ..dsl.values import coerce_record, coerce_value, parse_datetime
from ..errors import DispatchflowError, EvaluationError
from . import effects as fx
from .engine import Engine
from .ruleset import RulesetResult

DEFAULT_NOW = "2026-01-05T10:00:00"
SCORE_TOLERANCE = 1e-6


@dataclass
class CaseResult:
    name: str
    file: str
    line: int
    passed: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class TestReport:
    cases: list[CaseResult]
    unreached_rules: list[tuple[str, str, str, int]]  # ruleset, rule, file, line
    unreached_rows: list[tuple[str, int, str, int]]  # table, row number, file, line
    total_rules: int
    total_rows: int

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)


class _Runner:
    def __init__(self, app: App, engine: Engine) -> None:
        self.app, self.engine = app, engine
        self.fired: set[tuple[str, str]] = set()
        self.rows: set[tuple[str, int]] = set()

    def record(self, entity: str, case: dict[str, Any]) -> dict[str, Any]:
        data = (case.get("given") or {}).get(entity, {})
        return coerce_record(self.app.entities[entity], data, self.app.entities,
                             self.app.timezone)

    def run(self, case: dict[str, Any]) -> CaseResult:
        result = CaseResult(case["name"], case["_file"], case["_line"], True)
        now = parse_datetime(case.get("now", DEFAULT_NOW), self.app.timezone)
        expect = case.get("expect") or {}
        try:
            getattr(self, "_" + case["_kind"])(case, now, expect, result.problems)
        except EvaluationError as exc:
            if not expect.get("error"):
                result.problems.append(f"evaluation failed: {exc.message}")
        except DispatchflowError as exc:
            result.problems.append(f"bad test data: {exc}")
        else:
            if expect.get("error"):
                result.problems.append("expected evaluation to fail, but it succeeded")
        result.passed = not result.problems
        return result

    # -- rule sets
    def _event(self, case: dict, now: datetime, expect: dict, problems: list[str]) -> None:
        entity, event = case["event"].split(".", 1)
        results = self.engine.run_event(entity, event, self.record(entity, case), now, trace=True)
        self._check_rules(entity, results, expect, problems)

    def _ruleset(self, case: dict, now: datetime, expect: dict, problems: list[str]) -> None:
        compiled = self.engine.ruleset(case["ruleset"])
        entity = compiled.decl.entity
        results = [compiled.run(self.record(entity, case), now, trace=True)]
        self._check_rules(entity, results, expect, problems)

    def _check_rules(self, entity: str, results: list[RulesetResult], expect: dict,
                     problems: list[str]) -> None:
        effects = [e for r in results for e in r.effects]
        fired = {name for r in results for name in r.fired}
        for r in results:
            self.fired.update((r.ruleset, name) for name in r.fired)
        why_not = {t.rule: t.failed_condition for r in results for t in (r.trace or [])
                   if not t.matched}
        edef = self.app.entities[entity]
        final = {e.field: e.value for e in effects if isinstance(e, fx.SetField)}
        for key, want in (expect.get("set") or {}).items():
            fname = key.split(".", 1)[1] if key.startswith(entity + ".") else key
            fdef = edef.fields.get(fname)
            if fdef is None:
                problems.append(f"expect.set names unknown field '{fname}'")
                continue
            want_v = coerce_value(fdef.kind, want, self.app.timezone)
            if fname not in final:
                problems.append(f"expected {entity}.{fname} = {want!r}, but no rule set it"
                                + _because(why_not))
            elif final[fname] != want_v:
                problems.append(f"expected {entity}.{fname} = {want!r}, got {final[fname]!r}")
        checks = (("tags", fx.AddTag, "tag"), ("untags", fx.RemoveTag, "tag"))
        for key, cls, attr in checks:
            got = {getattr(e, attr) for e in effects if isinstance(e, cls)}
            for want in expect.get(key) or []:
                if want not in got:
                    problems.append(f"expected {key[:-1]} {want!r}; got {sorted(got) or 'none'}"
                                    + _because(why_not))
        for name in expect.get("fired") or []:
            if name not in fired:
                reason = why_not.get(name)
                problems.append(f"expected rule \"{name}\" to fire" +
                                (f"; its condition `{reason}` was false" if reason else
                                 " (no such rule ran)"))
        for name in expect.get("not_fired") or []:
            if name in fired:
                problems.append(f"expected rule \"{name}\" not to fire, but it did")
        emitted = {f"{e.entity}.{e.event}" for e in effects if isinstance(e, fx.EmitEvent)}
        for want in expect.get("emits") or []:
            if want not in emitted:
                problems.append(f"expected emit {want}; got {sorted(emitted) or 'none'}")
        notified = {e.notification for e in effects if isinstance(e, fx.Notify)}
        for want in expect.get("notifies") or []:
            if want not in notified:
                problems.append(f"expected notify {want}; got {sorted(notified) or 'none'}")
        if "dispatch" in expect:
            policies = [e.policy for e in effects if isinstance(e, fx.RequestDispatch)]
            if expect["dispatch"] not in policies:
                problems.append(f"expected request dispatch using {expect['dispatch']}; got "
                                f"{policies or 'none'}")

    # -- tables
    def _table(self, case: dict, now: datetime, expect: dict, problems: list[str]) -> None:
        compiled = self.engine.table(case["table"])
        table = compiled.table
        result = compiled.evaluate(self.record(table.entity, case), now)
        self.rows.update((table.name, n) for n in result.rows)
        kinds = {o.name: o.type.kind for o in table.outputs}

        def norm(d: dict) -> dict:
            return {k: _coerce_output(kinds.get(k, ""), v, self.app.timezone)
                    for k, v in d.items()}
        if "output" in expect:
            want = expect["output"]
            if table.aggregate:
                if isinstance(want, dict):  # {output_name: value}, as docs/bundle.md shows
                    want = want.get(table.outputs[0].name)
                want_v = _coerce_output(table.outputs[0].type.kind, want, self.app.timezone) \
                    if table.aggregate != "count" else want
                if result.outputs != want_v:
                    problems.append(f"expected {want!r}, got {result.outputs!r}")
            elif want is None:
                if result.outputs is not None:
                    problems.append(f"expected no row to match; rows {result.rows} matched")
            elif result.outputs is None:
                problems.append(f"expected {want!r}, but no row matched")
            else:
                got = {k: result.outputs.get(k) for k in want}
                if got != norm(want):
                    problems.append(f"expected {want!r}, got {repr(got)} (row {result.rows})")
        if "outputs" in expect:
            want_list = [norm(o) for o in expect["outputs"]]
            got_list = result.outputs if isinstance(result.outputs, list) else [result.outputs]
            if got_list != want_list:
                problems.append(f"expected {expect['outputs']!r}, got {repr(got_list)}")

    # -- policies
    def _policy(self, case: dict, now: datetime, expect: dict, problems: list[str]) -> None:
        compiled = self.engine.policy(case["policy"])
        decl = compiled.decl
        order, cand = self.record(decl.entity, case), self.record(decl.pool, case)
        exp = compiled.explain(order, cand, now)
        failed, score = compiled.evaluate(order, cand, now)
        if (failed == -1) != exp.eligible:
            problems.append("internal: evaluate and explain disagree")
        if "eligible" in expect and expect["eligible"] != exp.eligible:
            problems.append(f"expected eligible = {expect['eligible']}, got {exp.eligible}"
                            + (f" (excluded by \"{exp.excluded_by}\")" if exp.excluded_by else ""))
        if "excluded_by" in expect and expect["excluded_by"] != exp.excluded_by:
            problems.append(f"expected excluded by \"{expect['excluded_by']}\", got "
                            f"{exp.excluded_by!r}")
        if "score" in expect:
            if score is None or abs(score - float(expect["score"])) > SCORE_TOLERANCE:
                terms = ", ".join(f"{label}: {v:g}" for label, v in exp.terms)
                problems.append(f"expected score {expect['score']}, got {score} ({terms})")


def _because(why_not: dict[str, str | None]) -> str:
    reasons = [f"\"{rule}\" failed on `{cond}`" for rule, cond in why_not.items() if cond]
    return ("; " + "; ".join(reasons[:3])) if reasons else ""


def _coerce_output(kind: str, value: Any, tz: str) -> Any:
    mapping = {"number": "decimal", "duration": "duration", "datetime": "datetime",
               "distance": "decimal"}
    if kind in mapping and value is not None:
        return coerce_value(mapping[kind], value, tz)
    return value


def run_bundle_tests(app: App, engine: Engine | None = None) -> TestReport:
    """Run every case of the app and compute rule and row coverage."""
    engine = engine or Engine(app)
    runner = _Runner(app, engine)
    results = [runner.run(case) for case in app.test_cases]
    unreached_rules = [(rs.name, rule.name, rs.file, rule.span.line)
                       for rs in app.rulesets.values() for rule in rs.rules
                       if (rs.name, rule.name) not in runner.fired]
    unreached_rows = [(t.name, row.number, t.file, row.span.line if row.span else 0)
                      for t in app.tables.values() for row in t.rows
                      if (t.name, row.number) not in runner.rows]
    total_rules = sum(len(rs.rules) for rs in app.rulesets.values())
    total_rows = sum(len(t.rows) for t in app.tables.values())
    return TestReport(results, unreached_rules, unreached_rows, total_rules, total_rows)
