"""conditions.py: compiled form conditions, the browser serialiser and the JS interpreter.

The interpreter in ``static/dispatchflow-forms.js`` is checked against the
Python code generator here, under node (skipped when node is missing): the
same expressions over the same records must give the same truth value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatchflow.dsl import types as T
from dispatchflow.dsl.checker import ExprChecker, Scope
from dispatchflow.dsl.codegen import compile_expression
from dispatchflow.dsl.compiler import App
from dispatchflow.dsl.diagnostics import DiagnosticBag, render_text
from dispatchflow.dsl.parser import parse_expression
from dispatchflow.dsl.source import Origin, SourceFile
from dispatchflow.forms.conditions import client_fields, form_conditions, holds, to_client
from dispatchflow.forms.render import SCRIPT_FILE, STATIC_DIR

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def checked(app: App, text: str) -> Any:
    bag = DiagnosticBag()
    bag.add_source(SourceFile("<t>", text))
    node = parse_expression(text, Origin("<t>"), bag)
    assert node is not None, render_text(bag.sorted())
    scope = Scope({"sample": T.entity_type("sample")}, dict(app.entities))
    node = ExprChecker(scope, bag, "<t>").check_condition(node)
    assert not [d for d in bag.sorted() if d.severity.name == "ERROR"], render_text(bag.sorted())
    return node


# ------------------------------------------------------------------ serialiser


@pytest.mark.parametrize("text, tree", [
    ("sample.count > 3",
     {"op": ">", "args": [{"field": "count", "kind": "integer"}, {"lit": 3}]}),
    ('sample.level in ["high", "low"]',
     {"op": "in", "args": [{"field": "level", "kind": "enum"},
                           {"list": [{"lit": "high"}, {"lit": "low"}]}]}),
    ("not sample.active", {"op": "not", "args": [{"field": "active", "kind": "boolean"}]}),
    ("sample.active and sample.count >= -2",
     {"op": "and", "args": [{"field": "active", "kind": "boolean"},
                            {"op": ">=", "args": [{"field": "count", "kind": "integer"},
                                                  {"lit": -2}]}]}),
    ("sample.due_on is null", {"op": "is null", "args": [{"field": "due_on", "kind": "date"}]}),
    ("sample.owner is not null",
     {"op": "is not null", "args": [{"field": "owner", "kind": "reference"}]}),
    ("sample.within > 30m",
     {"op": ">", "args": [{"field": "within", "kind": "duration"}, {"dur": 1800.0}]}),
    ('sample.words contains "a"',
     {"op": "contains", "args": [{"field": "words", "kind": "list"}, {"lit": "a"}]}),
    ("if sample.active then sample.count > 1 else false",
     {"op": "if", "args": [{"field": "active", "kind": "boolean"},
                           {"op": ">", "args": [{"field": "count", "kind": "integer"},
                                                {"lit": 1}]},
                           {"lit": False}]}),
    ('sample.name != "x" or sample.confirmed',
     {"op": "or", "args": [{"op": "!=", "args": [{"field": "name", "kind": "string"},
                                                 {"lit": "x"}]},
                           {"field": "confirmed", "kind": "boolean"}]}),
])
def test_serialises_the_supported_subset(kinds_app: App, text: str, tree: dict) -> None:
    result = to_client(checked(kinds_app, text), kinds_app.entities["sample"])
    assert result == tree
    json.dumps(result)  # plain JSON


@pytest.mark.parametrize("text", [
    "sample.starts_at > now()",                 # builtin call
    "sample.count + 1 > 3",                     # arithmetic
    'sample.name matches "^a"',                 # regex dialects differ
    "len(sample.words) > 2",
    "sample.owner.name is null",                # a path through a reference
    'sample.active and sample.name matches "x"',  # one server-only part spoils the whole
])
def test_anything_else_is_server_only(kinds_app: App, text: str) -> None:
    assert to_client(checked(kinds_app, text), kinds_app.entities["sample"]) is None


def test_client_fields_lists_every_field_read(kinds_app: App) -> None:
    tree = to_client(checked(kinds_app, 'sample.active and sample.level in ["high"]'),
                     kinds_app.entities["sample"])
    assert client_fields(tree) == {"active", "level"}
    assert client_fields(None) == set()


def test_form_conditions_of_the_reference_completion_report(app: App) -> None:
    conds = form_conditions(app, "completion_report")
    assert set(conds) == {"resolution", "asset_code", "photos", "signature"}
    sig = conds["signature"]
    assert sig.visible_client == {"op": "not", "args": [
        {"field": "customer_absent", "kind": "boolean"}]}
    assert holds(sig.visible, {"customer_absent": False}, NOW) is True
    assert holds(sig.visible, {"customer_absent": True}, NOW) is False
    assert holds(None, {}, NOW) is None
    assert form_conditions(app, "completion_report") is conds  # built once per version


def test_a_server_only_condition_still_compiles(kinds_app: App) -> None:
    fc = form_conditions(kinds_app, "sample_form")["starts_at"]
    assert fc.required_expr is not None and fc.required_client is None
    assert holds(fc.required, {"starts_at": None}, NOW) is False


def test_a_failing_condition_gives_none() -> None:
    def broken(record: Any, now: datetime) -> bool:
        raise TypeError("boom")
    assert holds(broken, {}, NOW) is None


# ------------------------------------------------------------------ JS == Python

EXPRESSIONS = [
    "sample.count > 3", "sample.count != 3", "sample.count == 3", "sample.count in [1, 2, 3]",
    "sample.count not in [1, 2]", "not (sample.count > 3)", "sample.count is null",
    "sample.count is not null", 'sample.level == "high"', 'sample.level != "high"',
    'sample.level in ["high", "low"]', 'sample.level not in ["low"]',
    "sample.active and sample.count >= 2", "sample.confirmed or sample.active",
    "not sample.confirmed", "sample.confirmed",
    "if sample.confirmed then sample.count > 1 else sample.count < 1",
    'sample.words contains "a"', '"a" in sample.words', '"a" not in sample.words',
    '"ab" in sample.name', 'sample.name contains "b"', '"zz" not in sample.name',
    "sample.within > 30m", "sample.within <= 1h", "sample.within == 1h",
    "sample.owner is not null", "sample.price >= 1.5", "sample.price < 1.5",
    "sample.due_on is null", 'sample.name not in ["x", "abc"]', 'sample.name > "abb"',
    "sample.words is null", "not (sample.level is null) and not sample.active",
    'if sample.level is null then true else sample.level == "low"',
]

# ``name`` (required) and ``active`` (defaulted) are never null in a record.
RECORDS: list[dict[str, Any]] = [
    {"name": "q", "active": False},
    {"count": 3, "price": 1.5, "active": True, "confirmed": False, "level": "high",
     "name": "abc", "words": ["a", "b"], "within": timedelta(hours=1), "owner": 7,
     "due_on": date(2026, 3, 2)},
    {"count": 0, "price": 0.0, "active": False, "confirmed": True, "level": "low",
     "name": "x", "words": [], "within": timedelta(minutes=15), "owner": None,
     "due_on": None},
    {"count": 5, "active": True, "confirmed": None, "level": None, "name": "zzz",
     "words": ["c"], "within": timedelta(days=1)},
]


def _python_record(values: dict[str, Any]) -> dict[str, Any]:
    rec = dict(values)
    if isinstance(rec.get("owner"), int):
        rec["owner"] = {"id": rec["owner"]}
    return rec


def _browser_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, date):
        return value.isoformat()
    return value


NODE_HARNESS = """
global.window = {};
global.document = {readyState: 'complete', querySelectorAll: function () { return []; },
                   addEventListener: function () {}};
require(process.argv[1]);
const api = window.dispatchflowForms;
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => api.holds(c.tree, (name, kind) => api.coerce(kind, c.values[name])));
  process.stdout.write(JSON.stringify(out));
});
"""


def require_node() -> str:
    """The node binary; the JS tests fail (never skip) without it."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: apt-get install -y nodejs", pytrace=False)
    return node


def test_the_js_interpreter_agrees_with_the_python_code_generator(kinds_app: App) -> None:
    require_node()
    entity = kinds_app.entities["sample"]
    cases, expected, labels = [], [], []
    for text in EXPRESSIONS:
        node = checked(kinds_app, text)
        tree = to_client(node, entity)
        assert tree is not None, text
        fn = compile_expression(node, ["sample"], boolean=True)
        for i, values in enumerate(RECORDS):
            cases.append({"tree": tree,
                          "values": {k: _browser_value(v) for k, v in values.items()}})
            expected.append(bool(fn(_python_record(values), NOW)))
            labels.append(f"{text}  with record {i}")
    proc = subprocess.run(
        ["node", "-e", NODE_HARNESS, str(STATIC_DIR / SCRIPT_FILE)],
        input=json.dumps(cases), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    mismatches = [f"{label}: python {e}, js {g}"
                  for label, e, g in zip(labels, expected, got, strict=True) if e != g]
    assert mismatches == []


def test_the_js_coerces_form_text_like_the_submission_parser() -> None:
    require_node()
    script = NODE_HARNESS.split("let input")[0] + """
const c = api.coerce;
process.stdout.write(JSON.stringify([
  c('integer', ' 42 '), c('integer', ''), c('integer', 'x'), c('decimal', '1.5'),
  c('boolean', 'true'), c('boolean', ''), c('duration', '15m'), c('duration', 'soon'),
  c('list', 'a, b，c'), c('list', ' , '), c('string', '  '), c('text', '  '),
  c('geo', {lat: 1, lng: 2}), c('geo', {lat: NaN, lng: 2}), c('reference', '7')]));
"""
    proc = subprocess.run(["node", "-e", script, str(STATIC_DIR / SCRIPT_FILE)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        42, None, None, 1.5, True, None, 900, None, ["a", "b", "c"], None, None, "  ",
        {"lat": 1, "lng": 2}, None, 7]
