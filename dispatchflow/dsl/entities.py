"""Build :class:`~dispatchflow.dsl.model.EntityDef` s from schema-valid entity documents.

Checks what a JSON Schema cannot: reserved words as field names, references to
entities that do not exist, defaults and bounds that do not fit the field's
type, enum defaults that are not among the values, regex patterns that do not
compile, and keys that do not apply to the field's type.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from .ast import parse_duration
from .diagnostics import DiagnosticBag
from .model import SYSTEM_FIELDS, EntityDef, EnumValue, FieldDef
from .regex import problem as regex_problem
from .suggest import did_you_mean
from .wording import a
from .yaml_loader import YamlDocument

# Words the grammar reserves: they cannot be field or entity names (docs/dsl.md).
RESERVED_WORDS = frozenset(
    "if then else and or not in contains matches is null true false when set tag untag emit "
    "notify rule ruleset require score offer tiebreak as salience dispatch request start".split())

_TYPE_ONLY_KEYS = {
    "values": ("enum",), "entity": ("reference",), "accept": ("attachment",),
    "max_size_mb": ("attachment",), "multiple": ("attachment",), "items": ("list",),
    "min_length": ("string", "text"), "max_length": ("string", "text"),
    "pattern": ("string", "text"),
    "min": ("integer", "decimal", "date", "datetime", "duration"),
    "max": ("integer", "decimal", "date", "datetime", "duration"),
}


def build_fields(doc: YamlDocument, base: tuple, raw_fields: dict[str, Any],
                 bag: DiagnosticBag, owner: str) -> dict[str, FieldDef]:
    """Turn a ``fields`` mapping into FieldDefs (system fields first), reporting problems."""
    fields: dict[str, FieldDef] = {f.name: f for f in SYSTEM_FIELDS} if owner != "user" else {}
    for name, spec in raw_fields.items():
        path = base + (name,)
        if name in RESERVED_WORDS:
            bag.error("E1023", f"'{name}' is a reserved word and cannot name a field",
                      doc.path, doc.key_span(path), f"rename it, e.g. '{name}_value'")
            continue
        if name in fields:
            bag.error("E1020", f"'{name}' is a system field every record already has",
                      doc.path, doc.key_span(path), "choose another name")
            continue
        kind = spec["type"]
        for key, kinds in _TYPE_ONLY_KEYS.items():
            if key in spec and kind not in kinds:
                bag.error("E1010", f"'{key}' does not apply to {a(kind)} field", doc.path,
                          doc.key_span(path + (key,)),
                          f"'{key}' is for {' / '.join(kinds)} fields")
        values = tuple(
            EnumValue(v, {}) if isinstance(v, str)
            else EnumValue(v["value"], _label(v.get("label")))
            for v in spec.get("values", ()))
        if len({v.value for v in values}) != len(values):
            bag.error("E1020", "enum values repeat", doc.path, doc.span(path + ("values",)))
        pattern = spec.get("pattern")
        if pattern is not None:
            _check_pattern(bag, doc, path + ("pattern",), pattern)
        fdef = FieldDef(
            name=name, kind=kind, label=_label(spec.get("label")), help=_label(spec.get("help")),
            required=bool(spec.get("required", False)), default=spec.get("default"),
            unique=bool(spec.get("unique", False)), index=bool(spec.get("index", False)),
            minimum=spec.get("min"), maximum=spec.get("max"),
            min_length=spec.get("min_length"), max_length=spec.get("max_length"),
            pattern=pattern, enum_values=values, reference=spec.get("entity"),
            accept=tuple(spec.get("accept", ())), max_size_mb=spec.get("max_size_mb"),
            multiple=bool(spec.get("multiple", False)), sensitive=bool(spec.get("sensitive")),
            span=doc.key_span(path))
        for key in ("default", "min", "max"):
            if key in spec and spec[key] is not None:
                problem = value_problem(fdef, spec[key])
                if problem:
                    bag.error("E3021", f"{key} of '{name}': {problem}", doc.path,
                              doc.span(path + (key,)))
        fields[name] = fdef
    return fields


def value_problem(f: FieldDef, value: Any) -> str | None:
    """Why ``value`` (as written in YAML) cannot be a value of field ``f``, or None."""
    kind = f.kind
    if kind in ("string", "text"):
        return None if isinstance(value, str) else f"expected text, got {value!r}"
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected a whole number, got {value!r}"
    if kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if kind == "enum":
        allowed = [v.value for v in f.enum_values]
        if value in allowed:
            return None
        hint = did_you_mean(str(value), allowed)
        return f"{value!r} is not one of {', '.join(allowed)}" + (f" ({hint})" if hint else "")
    if kind == "duration":
        try:
            parse_duration(str(value))
        except ValueError as exc:
            return str(exc)
        return None
    if kind in ("date", "datetime"):
        try:
            date.fromisoformat(str(value)[:10])
        except ValueError:
            return f"expected an ISO date like 2026-01-31, got {value!r}"
        return None
    if kind == "list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "expected a list of strings"
    if kind == "geo":
        ok = isinstance(value, dict) and {"lat", "lng"} <= set(value)
        return None if ok else "expected {lat: ..., lng: ...}"
    return f"{a(kind)} field cannot have a default"


def build_entities(docs: list[YamlDocument], bag: DiagnosticBag) -> dict[str, EntityDef]:
    """EntityDefs by name; then checks references between them."""
    entities: dict[str, EntityDef] = {}
    for doc in docs:
        data = doc.data
        name = data["entity"]
        if name in RESERVED_WORDS:
            bag.error("E1023", f"'{name}' is a reserved word and cannot name an entity",
                      doc.path, doc.span(("entity",)), f"rename it, e.g. '{name}_record'")
            continue
        if name in entities:
            bag.error("E1020", f"entity '{name}' is already defined in {entities[name].file}",
                      doc.path, doc.span(("entity",)))
            continue
        fields = build_fields(doc, ("fields",), data["fields"], bag, name)
        title = data.get("title_field")
        if title is not None and title not in fields:
            bag.error("E3001", f"title_field '{title}' is not a field of {name}", doc.path,
                      doc.span(("title_field",)), did_you_mean(title, fields))
        entities[name] = EntityDef(name, _label(data["label"]), fields, doc.path,
                                   bool(data.get("sensitive", False)), title,
                                   _label(data.get("description")), doc.span(("entity",)))
    return entities


def check_references(docs_by_name: dict[str, YamlDocument], fields_by_owner: dict[str, dict],
                     entities: dict[str, EntityDef], bag: DiagnosticBag,
                     broken: set[str], base: dict[str, tuple]) -> None:
    """Report ``type: reference`` fields whose target entity does not exist."""
    for owner, fields in fields_by_owner.items():
        doc = docs_by_name[owner]
        for f in fields.values():
            if f.kind == "reference" and f.reference not in entities and \
                    f.reference not in broken:
                bag.error("E1021", f"field '{f.name}' refers to unknown entity '{f.reference}'",
                          doc.path, doc.span(base[owner] + (f.name, "entity")),
                          did_you_mean(f.reference or "", entities))


def _label(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"zh": value, "en": value}
    return {k: v for k, v in value.items() if k in ("zh", "en")}


#: What to say when a field pattern needs what RE2 leaves out.
FIELD_PATTERN_HINT = ("field patterns run in linear time (RE2 syntax): no backreferences (\\1), "
                      "no lookaround ((?=...), (?!...), (?<=...), (?<!...)), repeat counts up to "
                      "1000; keep the pattern to what every value must match and check the rest "
                      "in a rule")


def _check_pattern(bag: DiagnosticBag, doc: YamlDocument, path: tuple[Any, ...],
                   pattern: Any) -> None:
    """E3015 for a field pattern no engine reads, E3018 for one RE2 cannot run.

    Submitted values are matched on RE2 (linear time: a value comes from a
    request), so a pattern that needs backtracking is refused here, at load.
    """
    try:
        re.compile(pattern)
    except re.error as exc:  # Python's message, with its position, reads best
        bag.error("E3015", f"invalid regular expression: {exc}", doc.path, doc.span(path))
        return
    found = regex_problem(pattern)
    if found is not None:
        reason, pos = found
        where = f" (character {pos + 1} of the pattern)" if pos is not None else ""
        bag.error("E3018", f"field patterns run on RE2 and cannot use this one: {reason}{where}",
                  doc.path, doc.span(path), FIELD_PATTERN_HINT)

