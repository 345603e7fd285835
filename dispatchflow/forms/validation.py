"""Validate a JSON payload against an entity (or form) schema, with field-level messages.

:func:`validate_payload` never writes anything and never raises on the data:
any JSON value gives a :class:`Validated` with runtime-typed ``values`` and
:class:`FieldError` s whose messages are in the submitter's language. Steps:

1. keys the actor may not set (system fields, fields outside ``writable``,
   ``readonly`` form fields) become ``read_only``;
2. the JSON Schema of :mod:`.schema` (one reused ``Draft202012Validator`` per
   app version, entity/form and mode) reports the rest, translated to codes;
3. valid values are coerced with :func:`dispatchflow.dsl.values.coerce_value`
   and checked for what JSON Schema cannot say (date and duration bounds, a
   pattern matching the whole text, characters a database cannot store);
4. for a form, ``visible_if`` / ``required_if`` are evaluated on the record as
   it would be (``current`` + defaults + the new values): an invisible field is
   dropped and never an error; a required one that is empty is ``required``.

Error codes: ``required``, ``type``, ``enum``, ``max_length``, ``min_length``,
``pattern``, ``minimum``, ``maximum``, ``format``, ``unique_items``,
``unknown_field``, ``read_only`` (and, from :mod:`.submission`,
``file_too_large``, ``file_type``, ``file_empty``, ``too_many_files``,
``upload_failed``). ``field`` is a dotted path (``location.lat``,
``photos.0``) or ``""`` for the body as a whole.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as SchemaError

from ..dsl.compiler import App
from ..dsl.model import EntityDef, FieldDef
from ..dsl.regex import regex
from ..dsl.suggest import did_you_mean
from ..dsl.values import coerce_value
from ..errors import DispatchflowError
from .conditions import form_conditions, holds
from .messages import (
    expected_text,
    field_message,
    join_list,
    label_text,
    normalize_locale,
    ui_text,
)
from .schema import (
    FILE_ID_PATTERN,
    FormLayout,
    cached_entity_schema,
    cached_form_schema,
    check_mode,
    form_layout,
    get_entity,
    version_cached,
)

#: Keys the platform sets; a payload naming them gets ``read_only``.
SYSTEM_KEYS = frozenset({"id", "created_at", "updated_at", "created_by", "row_version",
                         "tags", "deleted_at"})

_MAX_LISTED = 20
_FILE_ID = re.compile(FILE_ID_PATTERN)
_PART_LABELS = {"lat": "latitude", "lng": "longitude"}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: where (``field``), what (``code``) and the text."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """``{"field", "code", "message"}``, the shape of API problem documents."""
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass
class Validated:
    """The outcome: runtime values of the valid fields, and every error (nothing if ok)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _linear_pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Any:
    """JSON Schema's ``pattern`` on RE2: the text comes from a request, so a careless
    pattern must not make it run for seconds (Python's ``re`` backtracks)."""
    if validator.is_type(instance, "string") and not regex(pattern).search(instance):
        yield SchemaError(f"{instance!r} does not match {pattern!r}")


#: The 2020-12 validator with ``pattern`` matched in linear time.
LinearTimeValidator = validators.extend(Draft202012Validator, {"pattern": _linear_pattern})


def payload_validator(app: App, entity: str, mode: str, form: str | None = None
                      ) -> Draft202012Validator:
    """The shared validator of an entity's (or form's) schema in ``mode``, built once."""
    def build() -> Draft202012Validator:
        schema = cached_form_schema(app, form, mode) if form else \
            cached_entity_schema(app, entity, mode)
        return LinearTimeValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return version_cached(app, ("validator", entity, form, mode), build)


def validate_payload(app: App, entity: str, data: Any, *, mode: str, form: str | None = None,
                     locale: str | None = "zh", writable: Collection[str] | None = None,
                     now: datetime | None = None,
                     current: Mapping[str, Any] | None = None) -> Validated:
    """Check ``data`` (parsed JSON) as a ``mode`` payload of ``entity``; see module docs.

    ``form`` restricts the payload to that form's fields and applies its
    conditions; ``writable`` is the set of fields the actor may write (a field
    mask; None = every field); ``now`` is the time conditions see (default: the
    current UTC time; pass the injected clock's); ``current`` is the stored
    record (runtime values) an update applies to, which form conditions read.

    Raises UnknownNameError for an unknown entity or form and ValueError for an
    unknown mode or a form of another entity; never for anything in ``data``.
    """
    check_mode(mode)
    edef = get_entity(app, entity)
    layout = form_layout(app, form) if form else None
    if layout is not None and layout.entity.name != entity:
        raise ValueError(f"form '{form}' is for {layout.entity.name}, not {entity}")
    check = _Check(app, edef, layout, normalize_locale(locale, app.default_locale), mode)
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        return Validated({}, [FieldError("", "type", field_message("body", check.locale))])
    payload = dict(data)
    check.keys(payload, writable)
    validator = payload_validator(app, entity, mode, form)
    try:
        for err in validator.iter_errors(payload):
            check.schema_error(err, payload)
    except Exception:  # noqa: BLE001 - never raise on data; see docs
        check.add("", "invalid", field_message(
            "invalid", check.locale,
            label=label_text(edef.label, check.locale, entity, app.default_locale)))
    values = check.coerce(payload)
    if layout is not None:
        check.conditions(layout, payload, values, current, now or datetime.now(UTC))
    return Validated(values, check.sorted_errors())


class _Check:
    """The state of one validation run: errors by field path, in a stable order."""

    def __init__(self, app: App, entity: EntityDef, layout: FormLayout | None, locale: str,
                 mode: str) -> None:
        self.app, self.entity, self.layout, self.locale, self.mode = \
            app, entity, layout, locale, mode
        self.errors: dict[str, FieldError] = {}
        self.decided: set[str] = set()  # top-level keys with a key-level verdict
        names = list(layout.fields) if layout is not None else list(entity.fields)
        self.order = {name: i for i, name in enumerate(names)}

    # -- bookkeeping
    def add(self, path: str, code: str, message: str) -> None:
        self.errors.setdefault(path, FieldError(path, code, message))

    def top_has_error(self, key: str) -> bool:
        return any(p == key or p.startswith(key + ".") for p in self.errors)

    def sorted_errors(self) -> list[FieldError]:
        def rank(e: FieldError) -> tuple:
            top = e.field.split(".", 1)[0]
            return (0 if not e.field else 1, self.order.get(top, len(self.order)), e.field)
        return sorted(self.errors.values(), key=rank)

    def fdef(self, key: str) -> FieldDef | None:
        if self.layout is not None:
            ff = self.layout.fields.get(key)
            return ff.field if ff is not None else None
        f = self.entity.fields.get(key)
        return None if f is None or f.system else f

    def label(self, path: list[Any]) -> str:
        """The label of a field path in the locale: ``上门位置（纬度）``, ``Photos (item 2)``."""
        key = str(path[0]) if path else ""
        if self.layout is not None and key in self.layout.fields:
            raw = self.layout.fields[key].label
        else:
            f = self.entity.fields.get(key)
            raw = f.label if f is not None else {}
        text = label_text(raw, self.locale, key, self.app.default_locale)
        rest = path[1:]
        if not rest:
            return text
        part = rest[0]
        if isinstance(part, int):
            detail = f"第 {part + 1} 项" if self.locale == "zh" else f"item {part + 1}"
        elif part in _PART_LABELS:
            detail = ui_text(_PART_LABELS[part], self.locale)
            detail = detail if self.locale == "zh" else detail.lower()
        else:
            detail = str(part)
        return f"{text}（{detail}）" if self.locale == "zh" else f"{text} ({detail})"

    def message(self, code: str, path: list[Any], **params: Any) -> str:
        return field_message(code, self.locale, label=self.label(path), **params)

    # -- step 1: keys the actor may not set
    def keys(self, payload: dict[str, Any], writable: Collection[str] | None) -> None:
        for key in payload:
            f = self.entity.fields.get(key)
            ff = self.layout.fields.get(key) if self.layout is not None else None
            system = key in SYSTEM_KEYS or (f is not None and f.system)
            known = ff is not None if self.layout is not None else (f is not None and not system)
            if system or (known and writable is not None and key not in writable) or \
                    (ff is not None and ff.readonly):
                self.add(key, "read_only", self.message("read_only", [key]))
                self.decided.add(key)
            elif not known:
                pool = self.layout.fields if self.layout is not None else \
                    [n for n, d in self.entity.fields.items() if not d.system]
                hint = did_you_mean(key, pool)
                suggestion = hint.split("'")[1] if hint else None
                if suggestion:
                    text = field_message("unknown_field_hint", self.locale, name=key,
                                         suggestion=suggestion)
                else:
                    text = field_message("unknown_field", self.locale, name=key)
                self.add(key, "unknown_field", text)
                self.decided.add(key)

    # -- step 2: schema errors
    def schema_error(self, err: SchemaError, payload: dict[str, Any]) -> None:
        path = list(err.absolute_path)
        if path and str(path[0]) in self.decided:
            return
        kind = err.validator
        if kind == "additionalProperties":
            props = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
            instance = err.instance if isinstance(err.instance, dict) else {}
            for extra in instance:
                if extra not in props and (path or extra not in self.decided):
                    sub = [*path, extra]
                    self.add(_dotted(sub), "unknown_field",
                             field_message("unknown_field", self.locale, name=_dotted(sub)))
            return
        if kind == "required":
            instance = err.instance if isinstance(err.instance, dict) else {}
            for name in err.validator_value:
                if name not in instance:
                    sub = [*path, name]
                    self.add(_dotted(sub), "required", self.message("required", sub))
            return
        code, params = self._translate(err, path)
        self.add(_dotted(path), _public_code(code), self.message(code, path, **params))

    def _translate(self, err: SchemaError, path: list[Any]) -> tuple[str, dict[str, Any]]:
        kind, value, instance = err.validator, err.validator_value, err.instance
        f = self.fdef(str(path[0])) if path else None
        fkind = f.kind if f is not None else "string"
        if kind == "type":
            if instance is None:
                return "required", {}
            if len(path) > 1:
                item = "number" if fkind == "geo" else \
                    "attachment" if fkind == "attachment" else "item"
                return "type", {"expected": expected_text(item, self.locale)}
            if fkind == "attachment" and f is not None and f.multiple:
                fkind = "attachments"
            return "type", {"expected": expected_text(fkind, self.locale)}
        if kind == "enum":
            allowed = [str(v) for v in value if v is not None]
            shown = allowed[:_MAX_LISTED] + (["…"] if len(allowed) > _MAX_LISTED else [])
            return "enum", {"values": join_list(shown, self.locale)}
        if kind == "minLength":
            return ("required", {}) if instance == "" else ("min_length", {"limit": value})
        if kind == "maxLength":
            return "max_length", {"limit": value}
        if kind == "minItems":
            return "required", {}
        if kind == "uniqueItems":
            return "unique_items", {}
        if kind in ("minimum", "maximum"):
            return kind, {"limit": _show(value)}
        if kind == "pattern":
            if fkind == "duration":
                return "format_duration", {}
            if fkind == "attachment":
                return "format_file_id", {}
            return "pattern", {}
        if kind == "format":
            return ("format_date" if value == "date" else "format_datetime"), {}
        return "invalid", {}

    # -- step 3: runtime values and the checks JSON Schema cannot express
    def coerce(self, payload: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, raw in payload.items():
            f = self.fdef(key)
            if f is None or key in self.decided or self.top_has_error(key):
                continue
            if raw is None:
                # The schema let null through, so the field is nullable: null is "no value".
                values[key] = None
                continue
            try:
                value = runtime_value(f, raw, self.app.timezone)
                problem = _post_check(f, raw, value, self.app.timezone, self.locale)
            except (DispatchflowError, ValueError, TypeError, KeyError, OverflowError,
                    AttributeError, IndexError):
                problem = ("format_" + f.kind) if f.kind in ("date", "datetime", "duration") \
                    else "format"
                value = None
            if problem is not None:
                code, params = problem if isinstance(problem, tuple) else (problem, {})
                self.add(key, _public_code(code), self.message(code, [key], **params))
                continue
            values[key] = value
        return values

    # -- step 4: form conditions
    def conditions(self, layout: FormLayout, payload: dict[str, Any], values: dict[str, Any],
                   current: Mapping[str, Any] | None, now: datetime) -> None:
        tz = self.app.timezone
        if self.mode == "create":
            for ff in layout.fields.values():
                if ff.name not in payload and ff.default is not None and not ff.readonly:
                    try:
                        values[ff.name] = runtime_value(ff.field, ff.default, tz)
                    except (DispatchflowError, ValueError, TypeError, KeyError):
                        pass
        record = self._record(payload, values, current)
        conds = form_conditions(self.app, layout.name)
        for ff in layout.fields.values():
            fc = conds.get(ff.name)
            if fc is not None and holds(fc.visible, record, now) is False:
                values.pop(ff.name, None)
                for path in [p for p in self.errors if p == ff.name or
                             p.startswith(ff.name + ".")]:
                    del self.errors[path]
                continue
            if ff.readonly or self.top_has_error(ff.name):
                continue
            required = ff.always_required or (
                fc is not None and holds(fc.required, record, now) is True)
            if not required:
                continue
            if self.mode == "update" and current is None and ff.name not in payload:
                continue  # nothing known about the stored value
            if _empty(record.get(ff.name)):
                self.add(ff.name, "required", self.message("required", [ff.name]))

    def _record(self, payload: dict[str, Any], values: dict[str, Any],
                current: Mapping[str, Any] | None) -> dict[str, Any]:
        """The record conditions see: defaults (create), the stored record, the new values."""
        rec: dict[str, Any] = {}
        if self.mode == "create":
            rec["tags"] = []
            for f in self.entity.fields.values():
                if not f.system and f.default is not None:
                    try:
                        rec[f.name] = runtime_value(f, f.default, self.app.timezone)
                    except (DispatchflowError, ValueError, TypeError, KeyError):
                        pass
        if current:
            rec.update(current)
        rec.update(values)
        for key in payload:
            if key not in values and self.fdef(key) is not None:
                rec[key] = None  # given but invalid: unknown
        for f in self.entity.fields.values():
            if f.kind == "reference" and isinstance(rec.get(f.name), int):
                old = current.get(f.name) if current else None
                same = isinstance(old, dict) and old.get("id") == rec[f.name]
                rec[f.name] = old if same else {"id": rec[f.name]}
        return rec


def runtime_value(f: FieldDef, raw: Any, tz: str) -> Any:
    """The runtime value of field ``f`` from its JSON form (None stays None).

    Raises ValueError, TypeError or ValidationError for a value of the wrong shape.
    """
    if raw is None:
        return None
    if f.kind == "reference":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw):
            raise TypeError("a record id is a whole number")
        return int(raw)
    if f.kind == "attachment":
        return list(raw) if isinstance(raw, list) else raw
    return coerce_value(f.kind, raw, tz)


def _post_check(f: FieldDef, raw: Any, value: Any, tz: str, locale: str) -> Any:
    """A (code, params) problem JSON Schema could not see, or None."""
    kind = f.kind
    texts = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    for text in texts:
        if isinstance(text, str) and not _storable(text):
            return "format_characters"
    if kind in ("string", "text") and f.pattern and isinstance(value, str) and \
            not regex(f"^(?:{f.pattern})$").search(value):
        return "pattern"
    if kind == "decimal" and not math.isfinite(value):
        return "type", {"expected": expected_text("decimal", locale)}
    if kind == "attachment":
        ids = value if isinstance(value, list) else [value]
        if not all(isinstance(i, str) and _FILE_ID.fullmatch(i) for i in ids):
            return "format_file_id"
    if kind in ("date", "datetime", "duration"):
        for bound, code in ((f.minimum, "minimum"), (f.maximum, "maximum")):
            if bound is None:
                continue
            try:
                limit = coerce_value(kind, bound if kind != "duration" else str(bound), tz)
            except (DispatchflowError, ValueError, TypeError):
                continue
            if (value < limit) if code == "minimum" else (value > limit):
                return code, {"limit": str(bound)}
    return None


def _public_code(code: str) -> str:
    """Message keys such as ``format_date`` share the public code ``format``."""
    return "format" if code.startswith("format") else code


def _storable(text: str) -> bool:
    """No NUL and valid UTF-8 (lone surrogates cannot be stored in PostgreSQL)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
