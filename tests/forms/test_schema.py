"""schema.py: entity and form JSON Schemas (2020-12) in create, update and read mode."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dispatchflow.dsl.compiler import App
from dispatchflow.forms.schema import (
    DEFAULT_STRING_MAX_LENGTH,
    MODES,
    UnknownNameError,
    cached_entity_schema,
    entity_schema,
    form_layout,
    form_schema,
)

FID = "A1b2C3d4E5f6G7h8_-x9"


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_reference_schema_is_a_valid_2020_12_schema(app: App) -> None:
    for entity in app.entities:
        for mode in MODES:
            schema = entity_schema(app, entity, mode)
            Draft202012Validator.check_schema(schema)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert schema["additionalProperties"] is False
    for form in app.forms:
        for mode in MODES:
            Draft202012Validator.check_schema(form_schema(app, form, mode))


# One valid and some invalid JSON values per field of the ``sample`` entity (create mode).
KIND_CASES: list[tuple[str, list[Any], list[Any]]] = [
    ("name", ["ab", "abcdefghij"], ["a", "", "abcdefghijk", 3, None]),
    ("code", ["AB-123", None], ["ab-123", "xAB-123", "AB-1234", 12]),
    ("notes", ["long text\nwith lines", None], [1, ["x"]]),
    ("count", [0, 10, 5.0, None], [-1, 11, 1.5, "3", True]),
    ("price", [0, 1.25, None], [-0.01, "1.2", False]),
    ("active", [True, False], [None, "true", 1]),
    ("due_on", ["2026-03-02", None], ["2026-02-30", "02/03/2026", "2026-03-02T10:00:00Z"]),
    ("starts_at", ["2026-03-02T10:00:00+08:00", "2026-03-02T02:00:00Z"],
     ["2026-03-02T10:00:00", "2026-03-02", "tomorrow"]),
    ("within", ["15m", "1.5h", "2d", "1w", "30s", None], ["15", "15 m", "-1h", "1y", 15]),
    ("level", ["low", "high", None], ["LOW", "medium", 1]),
    ("spot", [{"lat": 31.23, "lng": 121.47}, {"lat": -90, "lng": 180}, None],
     [{"lat": 91, "lng": 0}, {"lat": 0, "lng": -181}, {"lat": 1}, {"lat": 1, "lng": 2, "x": 3},
      [31.2, 121.4], "31,121"]),
    ("words", [[], ["a", "b"], None], [["a", 1], "a,b"]),
    ("owner", [1, 42, None], [0, -3, "7", 1.5, {"id": 1}]),
    ("photo", [FID, None], [[FID], "short", "has space in it...", 5]),
    ("photos", [[FID], [FID, FID[::-1]], [], None], [FID, [FID, FID], ["bad id"]]),
]


@pytest.mark.parametrize("name, good, bad", KIND_CASES, ids=[c[0] for c in KIND_CASES])
def test_field_kinds_accept_and_reject(kinds_app: App, name: str, good: list, bad: list) -> None:
    v = validator(entity_schema(kinds_app, "sample", "update"))
    for value in good:
        assert list(v.iter_errors({name: value})) == [], (name, value)
    for value in bad:
        assert list(v.iter_errors({name: value})) != [], (name, value)


def test_json_forms_of_the_kinds(kinds_app: App) -> None:
    props = entity_schema(kinds_app, "sample", "create", locale="en")["properties"]
    assert props["name"]["type"] == "string"  # required: not nullable
    assert props["name"]["minLength"] == 2 and props["name"]["maxLength"] == 10
    assert props["code"]["type"] == ["string", "null"]
    assert props["code"]["pattern"] == "^(?:[A-Z]{2}-[0-9]{3})$"
    assert props["notes"]["description"] == "Anything"
    assert props["count"]["minimum"] == 0 and props["count"]["maximum"] == 10
    assert props["price"]["type"] == ["number", "null"]
    assert props["active"] == {"title": "Active", "type": "boolean", "default": True,
                               "x-kind": "boolean"}
    assert props["due_on"]["format"] == "date" and props["due_on"]["x-minimum"] == "2026-01-01"
    assert props["starts_at"]["format"] == "date-time"
    assert props["within"]["x-minimum"] == "15m" and props["within"]["x-maximum"] == "3d"
    assert props["level"]["enum"] == ["low", "high", None]
    assert set(props["level"]["x-labels"]) == {"low", "high"}
    assert props["spot"]["required"] == ["lat", "lng"]
    assert props["spot"]["additionalProperties"] is False
    assert props["words"]["items"] == {"type": "string"}
    assert props["owner"]["type"] == ["integer", "null"]
    assert props["owner"]["x-reference"] == "person"
    assert props["photo"]["type"] == ["string", "null"]
    assert props["photo"]["x-accept"] == ["image/*"] and props["photo"]["x-max-size-mb"] == 1
    assert props["photos"]["type"] == ["array", "null"]
    assert props["secret"]["x-sensitive"] is True


def test_a_string_without_max_length_gets_the_column_size(app: App) -> None:
    props = entity_schema(app, "work_order", "create")["properties"]
    assert props["asset_code"]["maxLength"] == 32
    assert props["contact_phone"]["maxLength"] == DEFAULT_STRING_MAX_LENGTH
    assert "maxLength" not in props["resolution"] or props["resolution"]["maxLength"] == 4000


def test_create_requires_required_fields_without_defaults(app: App) -> None:
    schema = entity_schema(app, "work_order", "create")
    # priority, status and channel are required but have defaults
    assert schema["required"] == ["title", "category", "customer", "location"]
    assert schema["properties"]["priority"]["default"] == "P3"
    assert "null" not in schema["properties"]["priority"]["type"]


def test_update_requires_nothing(app: App) -> None:
    schema = entity_schema(app, "work_order", "update")
    assert "required" not in schema
    assert list(validator(schema).iter_errors({})) == []
    assert "default" not in schema["properties"]["priority"]


def test_read_includes_system_fields_and_drops_write_constraints(app: App) -> None:
    schema = entity_schema(app, "work_order", "read")
    props = schema["properties"]
    for name in ("id", "created_at", "updated_at", "created_by", "row_version", "tags"):
        assert props[name]["readOnly"] is True
    assert schema["required"] == ["id", "row_version"]
    assert props["contact_phone"] == {"title": "联系电话", "type": ["string", "null"],
                                      "x-kind": "string", "x-sensitive": True}
    record = {"id": 1, "created_at": "2026-03-02T10:00:00+08:00",
              "updated_at": "2026-03-02T10:00:00+08:00", "created_by": None, "row_version": 1,
              "tags": ["urgent"], "title": None, "contact_phone": "138****0000",
              "priority": "P1", "location": {"lat": 31.2, "lng": 121.5}, "photos": [FID]}
    assert list(validator(schema).iter_errors(record)) == []
    assert list(validator(schema).iter_errors({**record, "priority": "P9"})) != []


def test_system_fields_are_not_part_of_writes(app: App) -> None:
    for mode in ("create", "update"):
        props = entity_schema(app, "work_order", mode)["properties"]
        assert not {"id", "created_at", "row_version", "tags"} & set(props)


def test_titles_follow_the_locale(app: App) -> None:
    zh = entity_schema(app, "work_order", "create", locale="zh")
    en = entity_schema(app, "work_order", "create", locale="en-GB")
    assert (zh["title"], en["title"]) == ("工单", "Work order")
    assert zh["properties"]["title"]["title"] == "标题"
    assert en["properties"]["title"]["title"] == "Title"
    assert entity_schema(app, "work_order", "create", locale="fr")["title"] == "工单"


def test_form_schema_is_restricted_to_the_form(app: App) -> None:
    schema = form_schema(app, "repair_request", "create", locale="en")
    props = schema["properties"]
    assert list(props) == ["category", "title", "description", "asset_code", "photos",
                           "urgent", "address", "location", "contact_phone", "scheduled_at",
                           "customer", "channel"]
    assert props["channel"]["default"] == "web" and props["channel"]["x-widget"] == "hidden"
    assert props["scheduled_at"]["title"] == "Preferred visit time"  # the form's label
    assert schema["required"] == ["category", "title", "location", "customer"]
    assert schema["x-form"] == "repair_request" and schema["x-entity"] == "work_order"
    errors = list(validator(schema).iter_errors({"status": "new"}))
    assert any(e.validator == "additionalProperties" for e in errors)


def test_form_schema_requires_literal_required_if_but_not_conditional_fields(app: App) -> None:
    schema = form_schema(app, "completion_report", "create")
    assert schema["required"] == ["resolution", "photos"]  # required_if: "true"
    assert "signature" in schema["properties"]


def test_form_layout(app: App) -> None:
    layout = form_layout(app, "completion_report")
    assert [s.title.get("en") for s in layout.sections] == ["Work done", "Customer sign-off"]
    sig = layout.fields["signature"]
    assert sig.widget == "signature" and sig.visible_if is not None
    assert layout.fields["resolution"].always_required
    assert not sig.always_required
    intake = form_layout(app, "callcentre_intake")
    assert intake.fields["channel"].default == "phone"       # the form's default
    assert intake.fields["priority"].default == "P3"         # the field's default


def test_schemas_are_built_once_per_version_and_copied_out(app: App) -> None:
    assert cached_entity_schema(app, "work_order", "create") is \
        cached_entity_schema(app, "work_order", "create")
    first = entity_schema(app, "work_order", "create")
    first["properties"].clear()
    assert entity_schema(app, "work_order", "create")["properties"]


def test_unknown_names_and_modes(app: App) -> None:
    with pytest.raises(UnknownNameError, match="no entity 'ticket'"):
        entity_schema(app, "ticket", "create")
    with pytest.raises(UnknownNameError, match="no form 'nope'"):
        form_schema(app, "nope")
    with pytest.raises(ValueError, match="unknown schema mode 'patch'"):
        entity_schema(app, "work_order", "patch")
