"""Tests for dispatchflow.dsl.schema_validation and the bundle JSON Schemas."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dispatchflow.dsl import schema_validation
from dispatchflow.dsl.diagnostics import Diagnostic, DiagnosticBag, render_text
from dispatchflow.dsl.schema_validation import (
    KINDS,
    schema_for,
    validate_document,
)
from dispatchflow.dsl.source import SourceFile
from dispatchflow.dsl.yaml_loader import load_yaml

FIXTURES = Path(__file__).parent / "fixtures" / "schemas"
DOCS = Path(__file__).parents[2] / "docs" / "bundle.md"


def check(kind: str, text: str, path: str = "x.yaml") -> tuple[bool, list[Diagnostic]]:
    bag = DiagnosticBag()
    doc = load_yaml(SourceFile(path, textwrap.dedent(text).lstrip("\n")), bag)
    assert doc is not None, render_text(bag)
    ok = validate_document(doc, kind, bag)
    return ok, bag.sorted()


def golden(diagnostics: list[Diagnostic]) -> list[tuple]:
    return [(d.code, d.message, d.line, d.column, d.hint) for d in diagnostics]


def schema_files() -> list[tuple[str, dict[str, Any]]]:
    folder = resources.files("dispatchflow.dsl").joinpath("schemas")
    return [(kind, json.loads(folder.joinpath(f"{kind}.schema.json").read_text("utf-8")))
            for kind in KINDS]


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


# ----------------------------------------------------------------------------- schemas


@pytest.mark.parametrize(("kind", "schema"), schema_files(), ids=KINDS)
def test_schema_files_are_valid_draft_2020_12(kind: str, schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://dispatchflow.dev/schemas/{kind}.schema.json"
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize(("kind", "schema"), schema_files(), ids=KINDS)
def test_schema_conventions(kind: str, schema: dict[str, Any]) -> None:
    for where, node in walk(schema):
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: Any = schema
            for part in ref.removeprefix("#/").split("/"):
                assert isinstance(target, dict) and part in target, f"{where}: dangling {ref}"
                target = target[part]
        if "properties" in node and not where.endswith(("/if", "/then")):
            assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"
            for name, prop in node["properties"].items():
                assert prop.get("description"), f"{where}/properties/{name} has no description"


def test_shared_defs_are_identical_in_every_file() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for kind, schema in schema_files():
        for name, definition in schema["$defs"].items():
            if name in seen:
                assert definition == seen[name][1], f"$defs/{name} differs: {kind} vs {seen[name][0]}"
            else:
                seen[name] = (kind, definition)


def test_schema_for_returns_a_copy() -> None:
    schema = schema_for("entity")
    schema["properties"].clear()
    assert schema_for("entity")["properties"]["fields"]
    with pytest.raises(ValueError, match="unknown bundle file kind 'widget'"):
        schema_for("widget")


def test_validators_are_built_once_per_kind() -> None:
    first = schema_validation._validator("flow")
    assert schema_validation._validator("flow") is first


# ----------------------------------------------------------------------------- valid bundles


@pytest.mark.parametrize("kind", KINDS)
def test_realistic_example_is_accepted(kind: str) -> None:
    ok, diagnostics = check(kind, (FIXTURES / f"{kind}.yaml").read_text("utf-8"))
    assert ok, render_text(diagnostics)
    assert diagnostics == []


def test_minimal_documents_are_accepted() -> None:
    minimal = {
        "app": "app: demo\nversion: '1'\ntimezone: UTC\n",
        "entity": "entity: x\nlabel: X\nfields: {name: {type: string}}\n",
        "roles": "roles: {admin: {}}\n",
        "form": "form: f\nentity: x\ntitle: F\nsections: [{fields: [{field: name}]}]\n",
        "flow": "flow: f\nentity: x\ninitial: a\nstates: {a: {final: true}}\n",
        "channel": "channel: c\nkind: email\nentity: x\nmapping: {subject: title}\n",
        "notification": "notification: n\nentity: x\nchannels: [inbox]\n"
                        "to: [{role: admin}]\nbody: hi\n",
        "table": "table: t\nentity: x\nhit: unique\ninputs: [{expr: x.a}]\n"
                 "outputs: [{name: b, type: number}]\nrows: [[1, 2]]\n",
        "testcases": "cases: [{name: a, table: t, given: {x: {}}, expect: {}}]\n",
    }
    assert set(minimal) == set(KINDS)
    for kind, text in minimal.items():
        ok, diagnostics = check(kind, text)
        assert ok, f"{kind}: {render_text(diagnostics)}"


# ----------------------------------------------------------------------------- golden errors


def test_unknown_key_with_did_you_mean() -> None:
    ok, diagnostics = check("entity", """
        entity: work_order
        label: {zh: 工单, en: Work order}
        fields:
          phone:
            type: string
            requird: true
        """)
    assert not ok
    assert golden(diagnostics) == [
        ("E1011", "unknown key 'requird' in field 'phone'", 6, 5, "did you mean 'required'?"),
    ]
    assert diagnostics[0].end_column == 12
    assert diagnostics[0].source_line == "    requird: true"


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    ok, diagnostics = check("form", """
        form: f
        entity: x
        title: F
        colour: red
        sections: [{fields: [{field: name}]}]
        """)
    assert golden(diagnostics) == [
        ("E1011", "unknown key 'colour' in the form file", 4, 1,
         "allowed keys: acts_on, available_if, description, entity, form, roles, sections, "
         "submit_label, success_message, title"),
    ]


def test_each_unknown_key_is_reported_at_its_own_position() -> None:
    ok, diagnostics = check("flow", """
        flow: f
        entity: work_order
        initial: new
        states:
          new:
            transitions:
              - to: done
                onn: work_order.created
                gaurd: work_order.paid
          done: {final: true}
        """)
    assert golden(diagnostics) == [
        ("E1011", "unknown key 'onn' in transition 1 of state 'new'", 8, 9,
         "did you mean 'on'?"),
        ("E1011", "unknown key 'gaurd' in transition 1 of state 'new'", 9, 9,
         "did you mean 'guard'?"),
    ]


def test_wrong_type_with_yaml_quote_hint() -> None:
    ok, diagnostics = check("entity", """
        entity: work_order
        label: 工单
        fields:
          priority:
            type: enum
            values: [1, 2]
        """)
    assert not ok
    assert golden(diagnostics) == [
        ("E1012", "item 1 of 'values' must be a string or a mapping, not an integer", 6, 14,
         'quote it: "1"'),
        ("E1012", "item 2 of 'values' must be a string or a mapping, not an integer", 6, 17,
         'quote it: "2"'),
    ]


def test_wrong_type_quote_hint_keeps_the_text_as_written() -> None:
    ok, diagnostics = check("app", """
        app: field-service
        version: 1.10
        timezone: Asia/Shanghai
        """)
    assert golden(diagnostics) == [
        ("E1012", "'version' must be a string, not a number", 2, 10, 'quote it: "1.10"'),
    ]


@pytest.mark.parametrize(("line", "message", "hint"), [
    ("max_length: \"20\"", "'max_length' must be an integer, not a string",
     "remove the quotes: 20"),
    ("required: yes", "'required' must be a boolean (true or false), not a string",
     "write true or false ('yes' is text in bundle YAML)"),
    ("accept: image/*", "'accept' must be a list, not a string",
     "write a list, e.g. [image/*]"),
    ("label:", "'label' must be a string or a mapping, not empty",
     "write a value after the colon, or remove the key"),
])
def test_wrong_type_hints(line: str, message: str, hint: str) -> None:
    type_ = "attachment" if line.startswith("accept") else "string"
    ok, diagnostics = check("entity", f"""
        entity: x
        label: X
        fields:
          f:
            type: {type_}
            {line}
        """)
    assert golden(diagnostics) == [("E1012", message, 6, 5 if line == "label:" else
                                     line.index(" ") + 6, hint)]


def test_missing_required_key() -> None:
    ok, diagnostics = check("form", """
        form: report_fault
        title: {zh: 报修, en: Report a fault}
        sections:
          - fields:
              - field: description
        """)
    assert not ok
    assert golden(diagnostics) == [
        ("E1013", "missing required key 'entity'", 1, 1,
         "add 'entity:' — entity whose records the form creates or edits"),
    ]
    assert diagnostics[0].end_column == len("form: report_fault") + 1


def test_missing_required_key_in_a_named_entry_points_at_its_key() -> None:
    ok, diagnostics = check("entity", """
        entity: x
        label: X
        fields:
          status:
            type: enum
          owner:
            label: Owner
        """)
    assert golden(diagnostics) == [
        ("E1013", "missing required key 'values' in field 'status'", 4, 3,
         "an enum field lists its allowed values under 'values'"),
        ("E1013", "missing required key 'type' in field 'owner'", 6, 3,
         "add 'type:' — the field's type; decides its storage, widget and DSL type"),
    ]


def test_enum_typo() -> None:
    ok, diagnostics = check("notification", """
        notification: sla_warning
        entity: work_order
        channels: [email]
        to: [{role: dispatcher}]
        body: "{{ record.code }}"
        severity: critcal
        """)
    assert not ok
    assert golden(diagnostics) == [
        ("E1014", "'critcal' is not one of: info, warning, critical", 6, 11,
         "did you mean 'critical'?"),
    ]


def test_enum_value_with_no_close_match_has_no_hint() -> None:
    ok, diagnostics = check("channel", "channel: c\nkind: sms\nentity: x\nmapping: {a: b}\n")
    assert golden(diagnostics) == [("E1014", "'sms' is not one of: webhook, email", 2, 7, None)]


def test_misspelt_required_key_is_reported_once() -> None:
    ok, diagnostics = check("entity", """
        entity: x
        label: X
        fields:
          status:
            type: enum
            valeus: [open, closed]
        """)
    assert golden(diagnostics) == [
        ("E1011", "unknown key 'valeus' in field 'status'", 6, 5, "did you mean 'values'?"),
    ]


def test_wrong_type_is_not_also_reported_as_bad_enum_or_pattern() -> None:
    ok, diagnostics = check("channel", "channel: 7\nkind: [webhook]\nentity: x\nmapping: {a: b}\n")
    assert [d.code for d in diagnostics] == ["E1012", "E1012"]


def test_exactly_one_of_rules() -> None:
    ok, diagnostics = check("testcases", """
        cases:
          - name: two targets
            event: work_order.created
            table: sla_targets
            given: {work_order: {}}
            expect: {}
          - name: no target
            given: {work_order: {}}
            expect: {}
        """)
    hint = "a case runs exactly one of 'event', 'ruleset', 'table' or 'policy'"
    assert golden(diagnostics) == [
        ("E1010", "only one of the keys 'event', 'ruleset', 'table' or 'policy' may be given "
                  "in case 1, found 'event' and 'table'", 4, 5, hint),
        ("E1013", "missing one of the keys 'event', 'ruleset', 'table' or 'policy' in case 2",
         7, 5, hint),
    ]


def test_effect_must_have_exactly_one_key() -> None:
    ok, diagnostics = check("flow", """
        flow: f
        entity: work_order
        initial: new
        states:
          new:
            on_enter:
              - tag: urgent
                notify: escalation
        """)
    assert golden(diagnostics) == [
        ("E1010", "item 1 of 'on_enter' must have exactly one key, found 2: tag, notify",
         7, 9, "write each as its own list item, starting with '-'"),
    ]


def test_key_only_allowed_for_another_field_type() -> None:
    ok, diagnostics = check("entity", """
        entity: x
        label: X
        fields:
          code:
            type: string
            values: [a, b]
        """)
    assert golden(diagnostics) == [
        ("E1010", "'values' is not allowed in field 'code'", 6, 5,
         "only fields of type enum have 'values'"),
    ]


def test_aggregate_needs_hit_collect() -> None:
    ok, diagnostics = check("table", """
        table: t
        entity: x
        hit: first
        aggregate: sum
        inputs: [{expr: x.a}]
        outputs: [{name: b, type: number}]
        rows: [["-", 1]]
        """)
    assert golden(diagnostics) == [
        ("E1010", "'aggregate' is not allowed in the table file", 4, 1,
         "'aggregate' is only used with hit: collect"),
    ]


def test_pattern_errors_name_the_expected_form() -> None:
    ok, diagnostics = check("entity", """
        entity: WorkOrder
        label: X
        fields:
          Phone: {type: string}
        """)
    name_rule = ("A name: lower-case letters, digits and _, starting with a letter "
                 "(e.g. work_order).")
    assert golden(diagnostics) == [
        ("E1010", "'WorkOrder' is not a valid name", 1, 9,
         "did you mean 'work_order'? " + name_rule),
        ("E1010", "'Phone' is not a valid name in 'fields'", 4, 3,
         "did you mean 'phone'? " + name_rule),
    ]


def test_format_and_range_errors() -> None:
    ok, diagnostics = check("app", """
        app: demo
        version: "1"
        timezone: Asia/Shanghai
        calendars:
          office:
            working_hours:
              mon: ["9:00-18:00"]
            holidays: [2025-02-30]
        """)
    assert golden(diagnostics) == [
        ("E1010", "'9:00-18:00' is not a valid time range", 7, 13,
         "Opening hours as HH:MM-HH:MM in 24-hour time (e.g. 09:00-18:00; 24:00 may end "
         "a range)."),
        ("E1010", "'2025-02-30' is not a valid date", 8, 16,
         "A calendar date written YYYY-MM-DD (e.g. 2025-10-01)."),
    ]
    ok, diagnostics = check("testcases", """
        cases:
          - name: a
            table: t
            now: 2025-05-01 09:30
            given: {}
            expect: {}
        """)
    assert golden(diagnostics) == [
        ("E1010", "'2025-05-01 09:30' is not a valid date-time", 4, 10,
         "An RFC 3339 date-time with a UTC offset (e.g. 2025-05-01T09:30:00+08:00)."),
    ]


def test_size_and_uniqueness_errors() -> None:
    ok, diagnostics = check("flow", """
        flow: f
        entity: x
        initial: a
        states: {a: {}}
        sla_clocks:
          response:
            start_on: x.created
            stop_on: []
            target: 4h
            warn_at: 1.5
        """)
    assert golden(diagnostics) == [
        ("E1010", "'stop_on' must not be empty", 8, 14, None),
        ("E1010", "'warn_at' must be at most 1, not 1.5", 10, 14, None),
    ]
    ok, diagnostics = check("roles", "roles:\n  a:\n    permissions:\n      x: {allow: [read, read]}\n")
    assert golden(diagnostics) == [
        ("E1010", "'allow' lists 'read' more than once", 4, 25, "remove the repeated item"),
    ]


def test_empty_and_non_mapping_files() -> None:
    ok, diagnostics = check("entity", "# nothing yet\n")
    assert golden(diagnostics) == [
        ("E1012", "the entity file is empty", 1, 1,
         "an entity file needs at least: entity, label, fields"),
    ]
    ok, diagnostics = check("roles", "- admin\n- dispatcher\n")
    assert golden(diagnostics) == [
        ("E1012", "the roles file must be a mapping of keys to values, not a list", 1, 1, None),
    ]


def test_diagnostics_render_with_caret() -> None:
    ok, diagnostics = check("entity", """
        entity: x
        label: X
        fields:
          phone: {type: string, requird: true}
        """, path="entities/x.yaml")
    assert diagnostics[0].render() == (
        "entities/x.yaml:4:25: E1011: unknown key 'requird' in field 'phone'\n"
        "    4 |   phone: {type: string, requird: true}\n"
        "      |                         ^~~~~~~\n"
        "  hint: did you mean 'required'?"
    )


# ----------------------------------------------------------------------------- robustness


def _property_names() -> list[str]:
    names: set[str] = set()
    for _, schema in schema_files():
        for _, node in walk(schema):
            if isinstance(node, dict) and isinstance(node.get("properties"), dict):
                names.update(node["properties"])
    return sorted(names)


_KEYS = st.sampled_from(_property_names()) | st.text(min_size=1, max_size=8)
_SCALARS = (st.none() | st.booleans() | st.integers(-5, 5)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from(["", "P1", "enum", "15m", "work_order.created", "*", "17:45",
                               "2025-13-01", "Asia/Shanghai", "x y", "NO", "webhook"])
            | st.text(max_size=10))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS),
       data=st.dictionaries(_KEYS, _VALUES, max_size=8) | _VALUES)
def test_never_raises_and_maps_every_error(kind: str, data: Any) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    bag = DiagnosticBag()
    doc = load_yaml(SourceFile("x.yaml", text), bag)
    if doc is None:
        return
    # Every jsonschema error must have a dedicated mapping: the raw fallback never runs.
    with mock.patch.object(schema_validation, "_fallback",
                           side_effect=AssertionError("unmapped schema error")):
        ok = validate_document(doc, kind, bag)
    errors = [d for d in bag.sorted() if d.code in {"E1010", "E1011", "E1012", "E1013", "E1014"}]
    assert ok == (not errors)
    for d in errors:
        assert d.message and d.message.isprintable(), d.message
        assert d.hint is None or d.hint.isprintable(), d.hint


# ----------------------------------------------------------------------------- docs


def _shared_defs() -> set[str]:
    counts: dict[str, int] = {}
    for _, schema in schema_files():
        for name in schema["$defs"]:
            counts[name] = counts.get(name, 0) + 1
    return {name for name, n in counts.items() if n > 1}


@pytest.mark.parametrize(("kind", "schema"), schema_files(), ids=KINDS)
def test_reference_docs_mention_every_key(kind: str, schema: dict[str, Any]) -> None:
    docs = DOCS.read_text("utf-8")
    section = re.search(rf"<!-- kind: {kind} -->(.*?)(?=<!-- kind: |\Z)", docs, re.S)
    assert section, f"docs/bundle.md has no section for {kind}"
    shared = tuple(f"#/$defs/{name}/" for name in _shared_defs())
    for where, node in walk(schema):
        if isinstance(node, dict) and isinstance(node.get("properties"), dict):
            # Shared pieces (Label, Field, ...) are documented once, in their own section.
            text = docs if (where + "/").startswith(shared) else section.group(1)
            for name in node["properties"]:
                assert f"`{name}`" in text, f"docs/bundle.md ({kind}) lacks `{name}` ({where})"


def test_portal_tracking_grace_must_be_a_duration() -> None:
    ok, diagnostics = check("app", """
        app: demo
        version: "1"
        timezone: Asia/Shanghai
        portal:
          tracking_grace: soon
        tags:
          urgent: {zh: 加急, en: Urgent}
        """)
    assert not ok
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("E1010", 5, 19)]
    assert "soon" in diagnostics[0].message
