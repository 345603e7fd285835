"""Entities and forms -> JSON Schema 2020-12 for API payloads and form submissions.

Three modes describe three payloads of one entity:

``create``
    the body of a POST: fields that are required and have no default are
    required; unknown keys are errors (``additionalProperties: false``).
``update``
    a PATCH-like body: the same properties, nothing required.
``read``
    a record as the API returns it: the system fields (``id``, ``created_at``,
    ``updated_at``, ``created_by``, ``row_version``, ``tags``) plus every field.
    Field masks may leave fields out, and records written under earlier app
    versions must still validate, so only ``id`` and ``row_version`` are
    required and write constraints (lengths, patterns, bounds) are left out;
    types, formats and enum values stay.

JSON forms of the field kinds: string/text -> string; integer -> integer;
decimal -> number; boolean; date -> ``format: date``; datetime -> ``format:
date-time`` (with an offset); duration -> a string like ``"15m"``
(:data:`DURATION_PATTERN`); enum -> ``enum`` plus ``x-labels``; geo ->
``{lat, lng}``; list -> array of strings; reference -> the referenced record's
integer id; attachment -> a file id (:data:`FILE_ID_PATTERN`), or an array of
them when the field is ``multiple``. A value may be ``null`` exactly where the
DSL type is nullable: the field is neither required nor defaulted (in ``read``
mode every non-system field may be null). Bounds JSON Schema cannot express
(dates, durations) are annotations ``x-minimum`` / ``x-maximum``, checked by
:mod:`.validation`.

:func:`form_layout` is the typed view of a form definition (sections, fields,
widgets, labels, conditions) that validation, rendering and submission parsing
share. Everything here is built once per app version (keyed on ``App.digest``)
and cached; the public functions return copies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..dsl import ast
from ..dsl.compiler import App
from ..dsl.model import EntityDef, FieldDef, Label
from ..errors import DispatchflowError
from ..lru import LruCache
from .messages import label_text, normalize_locale

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

MODES = ("create", "update", "read")

#: JSON form of a duration: a number and a unit (the DSL's duration literal).
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(s|m|h|d|w)$"

#: Durations as records return them (``dsl.wording.duration_text``: may be negative).
READ_DURATION_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?(s|m|h|d|w)$"

#: Ids of stored files (the platform makes them with ``secrets.token_urlsafe``).
FILE_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"

#: Longest ``string`` value without a declared ``max_length``, in characters. It is
#: the column size the platform creates (``platform.defaults.DEFAULT_STRING_LENGTH``;
#: repeated here because forms must not import the platform layer).
DEFAULT_STRING_MAX_LENGTH = 255

#: Bounds of integer fields and record ids without declared bounds (64-bit columns).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Entries kept in the per-version cache (schemas, validators, layouts, conditions).
CACHE_SIZE = 512

#: The widget a form field gets when the form names none, by field kind.
DEFAULT_WIDGETS: dict[str, str] = {
    "string": "text", "text": "textarea", "integer": "number", "decimal": "number",
    "boolean": "checkbox", "date": "date", "datetime": "datetime", "duration": "duration",
    "enum": "select", "geo": "geo", "list": "tags", "reference": "select",
    "attachment": "file",
}

_SYSTEM_READ: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "created_by": {"type": ["string", "null"]},
    "row_version": {"type": "integer", "minimum": 1},
    "tags": {"type": "array", "items": {"type": "string"}},
}
_ROW_VERSION_LABEL = {"zh": "版本号", "en": "Row version"}
#: Allowed ranges of a geo point's parts, in degrees.
GEO_BOUNDS = {"lat": (-90, 90), "lng": (-180, 180)}


class UnknownNameError(DispatchflowError, LookupError):
    """The app defines no entity or form by that name (a stale URL or a caller bug)."""


# ------------------------------------------------------------------ per-version cache

_T = TypeVar("_T")
_CACHE: LruCache[tuple, Any] = LruCache(CACHE_SIZE)


def version_cached(app: App, key: tuple, build: Callable[[], _T]) -> _T:
    """``build()`` once per app version (``app.digest``) and ``key``; LRU-bounded.

    An app without a digest (built by hand in a test) is never cached.
    """
    if not app.digest:
        return build()
    return _CACHE.get_or_build((app.digest, *key), build)


# ------------------------------------------------------------------ form layout


@dataclass(frozen=True)
class FormField:
    """One input of a form: the entity field plus what the form says about it.

    ``default`` is the form's default, else the field's (JSON form), else None;
    ``visible_if`` / ``required_if`` are the checked DSL expressions (or None).
    """

    name: str
    field: FieldDef
    widget: str
    label: Label
    help: Label
    placeholder: Label
    readonly: bool
    default: Any
    section: int
    visible_if: ast.Expr | None
    required_if: ast.Expr | None

    @property
    def always_required(self) -> bool:
        """Required whenever visible: the entity requires it or ``required_if`` is ``true``."""
        if self.readonly:
            return False
        if self.field.required and self.default is None:
            return True
        cond = self.required_if
        return isinstance(cond, ast.Literal) and cond.value is True


@dataclass(frozen=True)
class FormSection:
    title: Label
    description: Label
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class FormLayout:
    """A form definition as typed data: what validation, rendering and parsing read."""

    name: str
    entity: EntityDef
    title: Label
    description: Label
    submit_label: Label
    roles: tuple[str, ...]
    sections: tuple[FormSection, ...]
    fields: dict[str, FormField]


def _label(value: Any) -> Label:
    if not value:
        return {}
    if isinstance(value, str):
        return {"zh": value, "en": value}
    return {k: v for k, v in value.items() if k in ("zh", "en") and isinstance(v, str)}


def get_entity(app: App, name: str) -> EntityDef:
    """The entity ``name``; raises UnknownNameError."""
    entity = app.entities.get(name)
    if entity is None:
        raise UnknownNameError(f"the app has no entity '{name}'",
                               hint="entities: " + ", ".join(sorted(app.entities)))
    return entity


def form_layout(app: App, form_name: str) -> FormLayout:
    """The typed layout of form ``form_name`` (cached per version); raises UnknownNameError."""
    item = app.forms.get(form_name)
    if item is None:
        raise UnknownNameError(f"the app has no form '{form_name}'",
                               hint="forms: " + ", ".join(sorted(app.forms)) if app.forms
                               else "the bundle defines no forms")
    return version_cached(app, ("layout", form_name), lambda: _build_layout(app, form_name))


def _build_layout(app: App, form_name: str) -> FormLayout:
    item = app.forms[form_name]
    data = item.data
    entity = get_entity(app, data["entity"])
    sections = []
    fields: dict[str, FormField] = {}
    for s, section in enumerate(data.get("sections") or []):
        members = []
        for f, spec in enumerate(section.get("fields") or []):
            fdef = entity.fields.get(spec.get("field"))
            if fdef is None or fdef.system or fdef.name in fields:
                continue  # the compiler reported it; a compiled app has none
            path = ("sections", s, "fields", f)
            ff = FormField(
                name=fdef.name, field=fdef,
                widget=spec.get("widget") or default_widget(fdef),
                label=_label(spec.get("label")) or fdef.label,
                help=_label(spec.get("help")) or fdef.help,
                placeholder=_label(spec.get("placeholder")),
                readonly=bool(spec.get("readonly", False)),
                default=spec["default"] if "default" in spec else fdef.default,
                section=s,
                visible_if=item.exprs.get(path + ("visible_if",)),
                required_if=item.exprs.get(path + ("required_if",)))
            members.append(ff)
            fields[ff.name] = ff
        sections.append(FormSection(_label(section.get("title")),
                                    _label(section.get("description")), tuple(members)))
    return FormLayout(form_name, entity, _label(data.get("title")),
                      _label(data.get("description")), _label(data.get("submit_label")),
                      tuple(data.get("roles") or ()), tuple(sections), fields)


def default_widget(f: FieldDef) -> str:
    """The widget for a field when a form names none (:data:`DEFAULT_WIDGETS`)."""
    return DEFAULT_WIDGETS.get(f.kind, "text")


# ------------------------------------------------------------------ schemas


def entity_schema(app: App, entity: str, mode: str, *, locale: str | None = None
                  ) -> dict[str, Any]:
    """The JSON Schema of ``entity``'s payload in ``mode`` (create, update or read).

    Titles and descriptions come from labels and help in ``locale`` (default:
    the app's). Raises UnknownNameError for an unknown entity and ValueError
    for an unknown mode. Returns a fresh copy the caller may change.
    """
    return copy.deepcopy(cached_entity_schema(app, entity, mode, locale))


def form_schema(app: App, form_name: str, mode: str = "create", *,
                locale: str | None = None) -> dict[str, Any]:
    """The JSON Schema of a submission of form ``form_name``: only the form's fields.

    Hidden inputs (``widget: hidden``) are fields of the form like any other;
    ``default`` is the form's default where it gives one. In ``create`` mode a
    field is required when the entity requires it with no default (entity or
    form) or its ``required_if`` is the literal ``true`` — unless it has a
    ``visible_if`` or is ``readonly``; conditional requirements are checked by
    :func:`~dispatchflow.forms.validation.validate_payload`. ``readonly`` fields
    carry ``readOnly: true``. Raises UnknownNameError / ValueError.
    """
    return copy.deepcopy(cached_form_schema(app, form_name, mode, locale))


def cached_entity_schema(app: App, entity: str, mode: str, locale: str | None = None
                         ) -> dict[str, Any]:
    """Like :func:`entity_schema` but the shared cached dict: do not modify it."""
    check_mode(mode)
    edef = get_entity(app, entity)
    loc = normalize_locale(locale, app.default_locale)
    return version_cached(app, ("entity_schema", entity, mode, loc),
                          lambda: _entity_schema(app, edef, mode, loc))


def cached_form_schema(app: App, form_name: str, mode: str = "create",
                       locale: str | None = None) -> dict[str, Any]:
    """Like :func:`form_schema` but the shared cached dict: do not modify it."""
    check_mode(mode)
    layout = form_layout(app, form_name)
    loc = normalize_locale(locale, app.default_locale)
    return version_cached(app, ("form_schema", form_name, mode, loc),
                          lambda: _form_schema(app, layout, mode, loc))


def check_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"unknown schema mode {mode!r}; expected one of {', '.join(MODES)}")


def _entity_schema(app: App, entity: EntityDef, mode: str, locale: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    text = _texts(app, locale)
    if mode == "read":
        for name, base in _SYSTEM_READ.items():
            fdef = entity.fields.get(name)
            label = fdef.label if fdef is not None else _ROW_VERSION_LABEL
            props[name] = {"title": text(label, name), **base, "readOnly": True}
        required = ["id", "row_version"]
    for f in entity.fields.values():
        if f.system:
            continue
        props[f.name] = field_schema(f, mode, title=text(f.label, f.name),
                                     description=text(f.help, ""))
        if mode == "create" and f.required and f.default is None:
            required.append(f.name)
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT, "title": text(entity.label, entity.name),
    }
    if entity.description:
        schema["description"] = text(entity.description, "")
    schema.update({"type": "object", "properties": props})
    if required:
        schema["required"] = required
    schema.update({"additionalProperties": False, "x-entity": entity.name, "x-mode": mode})
    return schema


def _form_schema(app: App, layout: FormLayout, mode: str, locale: str) -> dict[str, Any]:
    text = _texts(app, locale)
    props: dict[str, Any] = {}
    required: list[str] = []
    for ff in layout.fields.values():
        prop = field_schema(ff.field, mode, title=text(ff.label, ff.name),
                            description=text(ff.help, ""), default=ff.default)
        prop["x-widget"] = ff.widget
        if ff.readonly:
            prop["readOnly"] = True
        props[ff.name] = prop
        if mode == "create" and ff.always_required and ff.visible_if is None:
            required.append(ff.name)
    schema: dict[str, Any] = {"$schema": SCHEMA_DIALECT,
                              "title": text(layout.title, layout.name)}
    if layout.description:
        schema["description"] = text(layout.description, "")
    schema.update({"type": "object", "properties": props})
    if required:
        schema["required"] = required
    schema.update({"additionalProperties": False, "x-form": layout.name,
                   "x-entity": layout.entity.name, "x-mode": mode})
    return schema


def _texts(app: App, locale: str) -> Callable[[Label, str], str]:
    def text(label: Label, fallback: str) -> str:
        return label_text(label, locale, fallback, app.default_locale)
    return text


def field_schema(f: FieldDef, mode: str, *, title: str = "", description: str = "",
                 default: Any = None) -> dict[str, Any]:
    """The JSON Schema of one (non-system) field's value in ``mode``.

    ``default`` (JSON form) overrides the field's own default (forms use it).
    """
    read = mode == "read"
    out: dict[str, Any] = {}
    if title:
        out["title"] = title
    if description:
        out["description"] = description
    value = _value_schema(f, read)
    nullable = read or f.nullable
    if nullable:
        value["type"] = [value["type"], "null"]
        if "enum" in value:
            value["enum"] = [*value["enum"], None]
    out.update(value)
    fallback = f.default if default is None else default
    if mode == "create" and fallback is not None:
        out["default"] = copy.deepcopy(fallback)
    out["x-kind"] = f.kind
    if f.sensitive:
        out["x-sensitive"] = True
    return out


def _value_schema(f: FieldDef, read: bool) -> dict[str, Any]:
    """The non-null JSON Schema of a field's value (``read`` drops write constraints)."""
    kind = f.kind
    s: dict[str, Any]
    if kind in ("string", "text"):
        s = {"type": "string"}
        if read:
            return s
        min_length = f.min_length
        if min_length is None and f.required:
            min_length = 1  # a required text is not satisfied by ""
        if min_length:
            s["minLength"] = min_length
        max_length = f.max_length
        if max_length is None and kind == "string":
            max_length = DEFAULT_STRING_MAX_LENGTH
        if max_length is not None:
            s["maxLength"] = max_length
        if f.pattern:
            s["pattern"] = f"^(?:{f.pattern})$"  # the whole text must match
        return s
    if kind in ("integer", "decimal"):
        s = {"type": "integer" if kind == "integer" else "number"}
        if read:
            return s
        low = f.minimum if _is_number(f.minimum) else (INT64_MIN if kind == "integer" else None)
        high = f.maximum if _is_number(f.maximum) else (INT64_MAX if kind == "integer" else None)
        if low is not None:
            s["minimum"] = low
        if high is not None:
            s["maximum"] = high
        return s
    if kind == "boolean":
        return {"type": "boolean"}
    if kind in ("date", "datetime", "duration"):
        if kind == "duration":
            s = {"type": "string", "pattern": READ_DURATION_PATTERN if read else DURATION_PATTERN}
        else:
            s = {"type": "string", "format": "date" if kind == "date" else "date-time"}
        if not read:
            if f.minimum is not None:
                s["x-minimum"] = str(f.minimum)
            if f.maximum is not None:
                s["x-maximum"] = str(f.maximum)
        return s
    if kind == "enum":
        return {"type": "string", "enum": [v.value for v in f.enum_values],
                "x-labels": {v.value: dict(v.label) or {"zh": v.value, "en": v.value}
                             for v in f.enum_values}}
    if kind == "geo":
        return {"type": "object",
                "properties": {part: {"type": "number", "minimum": low, "maximum": high}
                               for part, (low, high) in GEO_BOUNDS.items()},
                "required": ["lat", "lng"], "additionalProperties": False}
    if kind == "list":
        return {"type": "array", "items": {"type": "string"}}
    if kind == "reference":
        return {"type": "integer", "minimum": 1, "maximum": INT64_MAX,
                "x-reference": f.reference}
    if kind == "attachment":
        item: dict[str, Any] = {"type": "string", "pattern": FILE_ID_PATTERN}
        if f.multiple:
            s = {"type": "array", "items": item, "uniqueItems": True}
            if f.required and not read:
                s["minItems"] = 1
        else:
            s = dict(item)
        if f.accept:
            s["x-accept"] = list(f.accept)
        if f.max_size_mb is not None:
            s["x-max-size-mb"] = f.max_size_mb
        return s
    return {"type": "string"}  # pragma: no cover - FIELD_KINDS is closed


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
