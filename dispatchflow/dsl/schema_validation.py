"""Validate bundle YAML files against their JSON Schemas, with author-friendly diagnostics.

Every YAML kind of a bundle (``app``, ``entity``, ``roles``, ``form``, ``flow``,
``channel``, ``notification``, ``table``, ``testcases``) has a Draft 2020-12 schema
in ``dispatchflow/dsl/schemas/<kind>.schema.json``; ``docs/bundle.md`` describes the
same format in prose. This module checks the *shape* of a loaded
:class:`~dispatchflow.dsl.yaml_loader.YamlDocument` (keys, types, allowed values,
name patterns); expressions inside the YAML are left to the type checker.

jsonschema's errors are turned into diagnostics that point at the offending key
or value and say how to fix it:

* E1011 unknown key (with "did you mean"),
* E1012 wrong type (with a "quote it" hint for YAML scalars such as ``1.0``),
* E1013 required key missing,
* E1014 value not among the allowed ones,
* E1010 anything else (pattern, format, sizes, exactly-one-of rules).

Schemas and validators are built lazily, once per kind, and cached.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .diagnostics import DiagnosticBag
from .source import Span
from .yaml_loader import Path, YamlDocument

KINDS: tuple[str, ...] = ("app", "entity", "roles", "form", "flow", "channel",
                          "notification", "table", "testcases")
"""Every YAML kind of a bundle, in the order ``docs/bundle.md`` describes them."""


_SCHEMAS: dict[str, dict[str, Any]] = {}
_VALIDATORS: dict[str, Draft202012Validator] = {}

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "a boolean (true or false)", "object": "a mapping",
               "array": "a list", "null": "empty"}
_YAML_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}
_MAX_SHOWN = 60
_NUMBER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def schema_for(kind: str) -> dict[str, Any]:
    """A copy of the JSON Schema for a bundle YAML kind (for docs and editors).

    Raises ValueError for a kind not in :data:`KINDS`.
    """
    return copy.deepcopy(_schema(kind))


def validate_document(doc: YamlDocument, kind: str, bag: DiagnosticBag) -> bool:
    """Check ``doc`` against the schema of ``kind``; report problems into ``bag``.

    Returns True when the document satisfies the schema. Never raises on the
    document's content (any data a YAML file can hold); raises ValueError only for
    an unknown ``kind``. Each cause is reported once, in source order.
    """
    findings = _diagnose(doc, kind)
    for f in findings:
        bag.error(f.code, f.message, doc.path, f.span, f.hint)
    return not findings


# ---------------------------------------------------------------------------- caches


def _schema(kind: str) -> dict[str, Any]:
    schema = _SCHEMAS.get(kind)
    if schema is None:
        if kind not in KINDS:
            raise ValueError(f"unknown bundle file kind {kind!r}; expected one of "
                             + ", ".join(KINDS))
        text = (resources.files(__package__).joinpath("schemas")
                .joinpath(f"{kind}.schema.json").read_text(encoding="utf-8"))
        schema = json.loads(text)
        _SCHEMAS[kind] = schema
    return schema


def _validator(kind: str) -> Draft202012Validator:
    validator = _VALIDATORS.get(kind)
    if validator is None:
        schema = _schema(kind)
        # The packaged schemas are static; tests run check_schema on each, so a
        # process does not pay ~190 ms to re-validate them against the metaschema.
        validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        _VALIDATORS[kind] = validator
    return validator


# ---------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class _Finding:
    code: str
    message: str
    span: Span | None
    hint: str | None = None


def _diagnose(doc: YamlDocument, kind: str) -> list[_Finding]:
    """All findings for ``doc``, de-duplicated and in source order."""
    validator = _validator(kind)
    mapper = _ErrorMapper(doc, kind, _schema(kind))
    # Unknown keys first: a misspelt required key is then reported once, as unknown.
    errors = sorted(validator.iter_errors(doc.data),
                    key=lambda e: e.validator != "additionalProperties")
    typed = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    findings: list[_Finding] = []
    for error in errors:
        # A value of the wrong type also fails its enum/pattern/...: report the type only.
        if error.validator != "type" and tuple(error.absolute_path) in typed \
                and not _is_key_error(error):
            continue
        try:
            findings.extend(mapper.map(error))
        except Exception:  # a report must come out whatever the data
            findings.append(_fallback(error, doc))
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda f: (f.span.line, f.span.column) if f.span else (0, 0))


def _fallback(error: ValidationError, doc: YamlDocument) -> _Finding:
    return _Finding("E1010", error.message, doc.span(tuple(error.absolute_path)))


def _is_key_error(error: ValidationError) -> bool:
    """True for errors about a mapping key itself (from ``propertyNames``)."""
    return "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str)


class _ErrorMapper:
    """Turns one jsonschema error into findings for one document."""

    def __init__(self, doc: YamlDocument, kind: str, schema: dict[str, Any]) -> None:
        self.doc = doc
        self.kind = kind
        self.schema = schema
        self.suggested: set[tuple[Path, str]] = set()  # (mapping path, did-you-mean key)

    def map(self, error: ValidationError, depth: int = 0) -> list[_Finding]:
        path: Path = tuple(error.absolute_path)
        if _is_key_error(error):
            return [self._key_error(error, path)]
        handler = {
            "additionalProperties": self._unknown_keys,
            "type": self._wrong_type,
            "required": self._missing,
            "enum": self._not_allowed,
            "const": self._not_const,
            "oneOf": self._alternatives,
            "anyOf": self._alternatives,
            "not": self._forbidden,
        }.get(str(error.validator))
        if handler is not None:
            found = handler(error, path, depth)
            if found is not None:
                return found
        return [self._other(error, path)]

    # -- E1011 -------------------------------------------------------------------

    def _unknown_keys(self, error: ValidationError, path: Path, depth: int) -> list[_Finding]:
        instance = error.instance
        if not isinstance(instance, dict):
            return []
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
        where = self.describe(path)
        out = []
        for key in instance:
            if key in allowed:
                continue
            close = _close(str(key), allowed)
            if close:
                hint = f"did you mean '{close}'?"
                self.suggested.add((path, close))
            elif allowed:
                hint = "allowed keys: " + ", ".join(allowed)
            else:
                hint = "no keys are allowed here"
            out.append(_Finding("E1011", f"unknown key {_show(key)} in {where}",
                                self.doc.key_span(path + (key,)), hint))
        return out

    # -- E1012 -------------------------------------------------------------------

    def _wrong_type(self, error: ValidationError, path: Path, depth: int) -> list[_Finding]:
        expected = error.validator_value
        wanted = [expected] if isinstance(expected, str) else list(expected)
        value = error.instance
        span = self.doc.span(path)
        if not path:
            if value is None:
                needs = ", ".join(self.schema.get("required", []))
                return [_Finding("E1012", f"the {self.kind} file is empty",
                                 span or Span.point(1, 1),
                                 f"{_article(self.kind)} {self.kind} file needs at least: "
                                 f"{needs}")]
            message = f"the {self.kind} file must be a mapping of keys to values, " \
                      f"not {_type_of(value)}"
            return [_Finding("E1012", message, span)]
        message = f"{self.name(path)} must be {_either(wanted)}, not {_type_of(value)}"
        if value is None and isinstance(path[-1], str):
            span = self.doc.key_span(path)  # an empty value has no text to point at
        return [_Finding("E1012", message, span, self._type_hint(path, value, wanted))]

    def _type_hint(self, path: Path, value: Any, wanted: list[str]) -> str | None:
        raw = self.doc.raw(path)
        if value is None:
            if isinstance(path[-1], int):
                return "write a value; an empty list item is read as null"
            return "write a value after the colon, or remove the key"
        if raw is not None and not raw.isprintable():
            raw = None
        if "string" in wanted and isinstance(value, bool | int | float) and raw is not None:
            return f'quote it: "{raw}"'
        if isinstance(value, str):
            if {"integer", "number"} & set(wanted) and _is_number(value):
                return f"remove the quotes: {value}"
            if "boolean" in wanted and value.lower() in _YAML_BOOL_WORDS:
                return f"write true or false ('{value}' is text in bundle YAML)"
        if "array" in wanted and not isinstance(value, dict | list):
            shown = raw if raw is not None else _escape(json.dumps(value, ensure_ascii=False))
            return f"write a list, e.g. [{shown}]"
        return None

    # -- E1013 -------------------------------------------------------------------

    def _missing(self, error: ValidationError, path: Path, depth: int) -> list[_Finding]:
        instance = error.instance
        if not isinstance(instance, dict):
            return []
        schema = error.schema if isinstance(error.schema, dict) else {}
        where = f" in {self.describe(path)}" if path else ""
        out = []
        for key in error.validator_value:
            if key in instance or (path, key) in self.suggested:
                continue
            hint = None
            prop = schema.get("properties", {}).get(key)
            if isinstance(prop, dict) and prop.get("description"):
                hint = f"add '{key}:' — {_sentence_part(prop['description'])}"
            elif isinstance(schema.get("description"), str) and "properties" not in schema:
                hint = schema["description"]  # an if/then rule says why the key is needed
            out.append(_Finding("E1013", f"missing required key {_show(key)}{where}",
                                self.mapping_span(path), hint))
        return out

    # -- E1014 -------------------------------------------------------------------

    def _not_allowed(self, error: ValidationError, path: Path, depth: int) -> list[_Finding]:
        choices = list(error.validator_value)
        value = error.instance
        message = f"{_show(value)} is not one of: " + ", ".join(_plain(c) for c in choices)
        hint = None
        if isinstance(value, str):
            close = _close(value, [c for c in choices if isinstance(c, str)])
            if close:
                hint = f"did you mean '{close}'?"
        return [_Finding("E1014", message, self.doc.span(path), hint)]

    def _not_const(self, error: ValidationError, path: Path, depth: int) -> list[_Finding]:
        schema = error.schema if isinstance(error.schema, dict) else {}
        message = f"{self.name(path)} must be {_show(error.validator_value)}, " \
                  f"not {_show(error.instance)}"
        hint = schema.get("description")
        return [_Finding("E1014", message, self.doc.span(path),
                         hint if isinstance(hint, str) else None)]

    # -- E1010: exactly-one-of, forbidden keys, everything else ------------------

    def _alternatives(self, error: ValidationError, path: Path,
                      depth: int) -> list[_Finding] | None:
        branches = error.validator_value
        schema = error.schema if isinstance(error.schema, dict) else {}
        instance = error.instance
        if isinstance(instance, dict) and all(
                isinstance(b, dict) and set(b) == {"required"} for b in branches):
            keys = [k for b in branches for k in b["required"]]
            present = [k for k in keys if k in instance]
            where = self.describe(path)
            if not present:
                if any((path, k) in self.suggested for k in keys):
                    return []
                return [_Finding("E1013", f"missing one of the keys {_or(keys)} in {where}",
                                 self.mapping_span(path), schema.get("description"))]
            if len(present) > 1:
                message = (f"only one of the keys {_or(keys)} may be given in {where}, "
                           f"found {_and(present)}")
                return [_Finding("E1010", message, self.doc.key_span(path + (present[1],)),
                                 schema.get("description"))]
            return []
        if error.context and depth < 8:
            return self.map(best_match(error.context), depth + 1)
        return None

    def _forbidden(self, error: ValidationError, path: Path,
                   depth: int) -> list[_Finding] | None:
        forbidden = error.validator_value
        if not (isinstance(forbidden, dict) and set(forbidden) == {"required"}
                and isinstance(error.instance, dict)):
            return None
        schema = error.schema if isinstance(error.schema, dict) else {}
        out = []
        for key in forbidden["required"]:
            if key in error.instance:
                out.append(_Finding("E1010",
                                    f"{_show(key)} is not allowed in {self.describe(path)}",
                                    self.doc.key_span(path + (key,)),
                                    schema.get("description")))
        return out

    def _key_error(self, error: ValidationError, path: Path) -> _Finding:
        key = error.instance
        span = self.doc.key_span(path + (key,))
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "pattern":
            title = schema.get("title", "key")
            return _Finding("E1010", f"{_show(key)} is not a valid {title} in "
                                     f"{self.describe(path)}", span,
                            _pattern_hint(key, str(error.validator_value), schema))
        if error.validator == "minLength":
            return _Finding("E1010", f"empty key in {self.describe(path)}", span)
        return _Finding("E1010", f"key {_show(key)} in {self.describe(path)}: {error.message}",
                        span)

    def _other(self, error: ValidationError, path: Path) -> _Finding:
        v = error.validator
        value = error.instance
        limit = error.validator_value
        schema = error.schema if isinstance(error.schema, dict) else {}
        name = self.name(path)
        span = self.doc.span(path)
        hint = None
        if v == "pattern":
            title = schema.get("title")
            if title:
                message = f"{_show(value)} is not a valid {title}"
            else:
                message = f"{_show(value)} does not match the pattern {limit}"
            hint = _pattern_hint(value, str(limit), schema)
        elif v == "format":
            message = f"{_show(value)} is not a valid {schema.get('title', limit)}"
            hint = schema.get("description")
        elif v in ("minItems", "minLength", "minProperties") and limit == 1:
            message = f"{name} must not be empty"
        elif v == "minItems":
            message = f"{name} must have at least {limit} items"
        elif v == "minLength":
            message = f"{name} must be at least {limit} characters long"
        elif v == "minProperties":
            message = f"{name} must have at least {limit} keys"
        elif v == "maxProperties" and isinstance(value, dict):
            keys = ", ".join(_plain(k) for k in value)
            if limit == 1 and schema.get("minProperties") == 1:
                message = f"{name} must have exactly one key, found {len(value)}: {keys}"
                if path and isinstance(path[-1], int):
                    hint = "write each as its own list item, starting with '-'"
            else:
                message = f"{name} must have at most {limit} keys, found {len(value)}: {keys}"
        elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = {"minimum": "at least", "maximum": "at most",
                     "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than"}[v]
            message = f"{name} must be {bound} {_plain(limit)}, not {_plain(value)}"
        elif v == "uniqueItems" and isinstance(value, list):
            index = _first_duplicate(value)
            message = f"{name} lists {_show(value[index])} more than once"
            span = self.doc.span(path + (index,))
            hint = "remove the repeated item"
        elif v is None:
            message = f"{name} is not allowed here"
        else:
            message = f"{name}: {error.message}"
        return _Finding("E1010", message, span, hint)

    # -- naming and positions ----------------------------------------------------

    def name(self, path: Path) -> str:
        """Short name of the value at ``path``: ``'max_length'`` or ``item 2 of 'values'``."""
        if not path:
            return f"the {self.kind} file"
        last = path[-1]
        if isinstance(last, int):
            return f"item {last + 1} of {self.name(path[:-1])}"
        return _show(last)

    def describe(self, path: Path) -> str:
        """Where ``path`` is, in the author's terms: ``field 'phone'``,
        ``transition 2 of state 'assigned'``, ``'expect' of case 1``."""
        segments = list(self._segments(path))
        if not segments:
            return f"the {self.kind} file"
        parts: list[str] = []
        i = len(segments) - 1
        while i >= 0 and len(parts) < 3:
            role, step, title = segments[i]
            if role == "entry":
                parts.append(f"{_noun(title)} {_show(step)}" if title else _show(step))
                if title:
                    break
            elif role == "item" and isinstance(step, int):
                noun = _noun(title) if title else "item"
                phrase = f"{noun} {step + 1}"
                parent = segments[i - 1][1] if i > 0 else None
                if isinstance(parent, str):
                    if not parent.startswith(noun.split()[-1]):
                        phrase += f" in {_show(parent)}"
                    i -= 1
                parts.append(phrase)
            else:
                parts.append(_show(step))
            i -= 1
        return " of ".join(parts)

    def _segments(self, path: Path) -> Iterator[tuple[str, str | int, str | None]]:
        """(role, step, title) per path step; role is prop, entry (map value) or item."""
        node: Any = self.schema
        for step in path:
            node = self._resolve(node)
            child: Any = None
            role = "prop"
            if isinstance(node, dict):
                if isinstance(step, int):
                    child, role = node.get("items"), "item"
                elif step in node.get("properties", {}):
                    child = node["properties"][step]
                elif isinstance(node.get("additionalProperties"), dict):
                    child, role = node["additionalProperties"], "entry"
            resolved = self._resolve(child)
            title = resolved.get("title") if isinstance(resolved, dict) else None
            yield role, step, title if isinstance(title, str) else None
            node = child if child is not None else {}

    def _resolve(self, node: Any) -> Any:
        for _ in range(16):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)
                    and node["$ref"].startswith("#/")):
                return node
            target: Any = self.schema
            for part in node["$ref"][2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node

    def mapping_span(self, path: Path) -> Span | None:
        """Where to report something missing from the mapping at ``path``: the key naming
        it when there is one, else the mapping's first line."""
        if path and isinstance(path[-1], str) and tuple(path) in self.doc.key_spans:
            return self.doc.key_spans[tuple(path)]
        span = self.doc.span(path)
        if span is None:
            return Span.point(1, 1) if not path else None
        if span.end_line == span.line:
            return span
        text = self.doc.source.line_text(span.line) or ""
        end = max(len(text.rstrip()) + 1, span.column + 1)
        return Span(span.line, span.column, span.line, end)


# ---------------------------------------------------------------------------- wording


def _show(value: Any) -> str:
    """A value as the author would recognise it: strings in single quotes."""
    if isinstance(value, str):
        # Control characters (a key with a newline...) are shown escaped, CJK as is.
        text = f"'{_escape(value)}'"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return _escape(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _escape(text: str) -> str:
    """``text`` with control and other unprintable characters as backslash escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _type_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _either(types: list[str]) -> str:
    words = [_TYPE_WORDS.get(t, t) for t in types]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _or(keys: Iterable[str]) -> str:
    shown = [_show(k) for k in keys]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _and(keys: Iterable[str]) -> str:
    shown = [_show(k) for k in keys]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _noun(title: str | None) -> str:
    """A schema title as a noun in a sentence: ``Field`` -> ``field``, ``SLA clock`` kept."""
    if not title:
        return ""
    if len(title) > 1 and title[1].isupper():
        return title
    return title[0].lower() + title[1:]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _sentence_part(description: str) -> str:
    """A description as a clause: first letter lowered, final period dropped."""
    return _noun(description.strip()).rstrip(".")


def _close(word: str, candidates: list[str]) -> str | None:
    for c in candidates:
        if c.lower() == word.lower():
            return c
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _is_number(text: str) -> bool:
    """True when ``text`` would be read as a number if written without quotes."""
    return _NUMBER.fullmatch(text) is not None


def _snake(text: str) -> str:
    """``WorkOrder`` / ``work-order`` / ``Work Order`` -> ``work_order``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    return text.lower()


def _pattern_hint(value: Any, pattern: str, schema: dict[str, Any]) -> str | None:
    description = schema.get("description")
    hint = description if isinstance(description, str) else None
    if isinstance(value, str):
        suggestion = _snake(value)
        try:
            fits = suggestion != value and re.fullmatch(pattern, suggestion) is not None
        except re.error:
            fits = False
        if fits:
            hint = f"did you mean '{suggestion}'?" + (f" {hint}" if hint else "")
    return hint


def _first_duplicate(items: list[Any]) -> int:
    seen: list[Any] = []
    for i, item in enumerate(items):
        if any(item == s and type(item) is type(s) for s in seen):
            return i
        seen.append(item)
    return 0
