"""Completion and hover: what an editor offers at a cursor, from the compiled model.

Pure functions of (document text, cursor, the bundle's draft :class:`App`). Names
are resolved the way the checker resolves them: the roots of the declaration
around the cursor (a rule set's entity and the decision tables over it, a
dispatch policy's two entities) in a :class:`~dispatchflow.dsl.checker.Scope`,
and a path's type is what :class:`~dispatchflow.dsl.checker.ExprChecker` gives
it. Text being typed rarely parses, so the declaration is found by its header
line rather than from the parse tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..dsl import types as T
from ..dsl.builtins import REGISTRY
from ..dsl.checker import ExprChecker, Scope
from ..dsl.compiler import App
from ..dsl.diagnostics import DiagnosticBag
from ..dsl.items import USER_ENTITY
from ..dsl.model import FieldDef, field_type
from ..dsl.parser import get_parser, parse_expression
from ..dsl.source import Origin
from ..dsl.tables import table_roots

_RULESET = re.compile(r"^\s*ruleset\s+\w+\s+on\s+(\w+)\s*\.")
_POLICY = re.compile(r"^\s*dispatch\s+policy\s+\w+\s+for\s+(\w+)\s+from\s+(\w+)")
# A field path ending at the cursor: `work_order.customer.` or `work_order.cust`.
_PATH_BEFORE = re.compile(r"(?P<path>[A-Za-z_]\w*(?:\??\.[A-Za-z_]\w*)*)\??\.(?P<partial>\w*)$")
_WORD_BEFORE = re.compile(r"(?P<partial>[A-Za-z_]\w*)?$")
# An enum comparison being typed: `work_order.priority == "P` or `!= '`.
_ENUM_BEFORE = re.compile(
    r"(?P<path>[A-Za-z_]\w*(?:\??\.[A-Za-z_]\w*)*)\s*(?:==|!=)\s*[\"'](?P<partial>[^\"']*)$")
_PATH_CHAR = re.compile(r"[\w.?]")


@dataclass(frozen=True)
class Suggestion:
    """One completion: ``kind`` is ``field``, ``name``, ``function``, ``keyword`` or
    ``value`` (of an enum)."""

    label: str
    kind: str
    detail: str
    doc: str = ""


@cache
def keywords() -> tuple[str, ...]:
    """The words of the ``.rules`` grammar (``ruleset``, ``when``, ``require``, ...)."""
    words = {str(t.pattern.value) for t in get_parser().terminals
             if t.pattern.type == "str" and str(t.pattern.value).isalpha()}
    return tuple(sorted(words))


def scope_at(app: App, lines: list[str], line: int, rules_file: bool) -> Scope:
    """The scope of an expression on 0-based ``line``: the enclosing declaration's
    roots in a ``.rules`` file; in YAML files (flows, forms, ...) every entity and
    ``user``, since which record a YAML expression reads depends on its key."""
    entities = {**app.entities, USER_ENTITY: app.user}
    if rules_file:
        for text in reversed(lines[: line + 1]):
            if m := _RULESET.match(text):
                entity = m.group(1)
                t_roots, t_entities = table_roots(app.tables, entity, {entity})
                return Scope({entity: T.entity_type(entity), **t_roots},
                             {**entities, **t_entities})
            if m := _POLICY.match(text):
                return Scope({name: T.entity_type(name) for name in m.groups()}, entities)
    return Scope({name: T.entity_type(name) for name in entities}, entities)


def type_of(path: str, scope: Scope) -> T.Type | None:
    """The checker's type for a field path, or None if it does not resolve."""
    bag = DiagnosticBag()
    node = parse_expression(path, Origin("<lsp>"), bag)
    if node is None or bag.has_errors:
        return None
    typed = ExprChecker(scope, bag, "<lsp>").check(node)
    return None if typed.type is None or typed.type.is_error else typed.type


def complete(app: App, lines: list[str], line: int, column: int,
             rules_file: bool) -> list[Suggestion]:
    """Suggestions at 0-based (``line``, ``column``): the values of an enum field
    inside a string compared to it (``priority == "`` offers ``P1`` .. ``P4``); the
    fields of the record before a ``.``; otherwise the names in scope, builtin
    functions and keywords."""
    prefix = lines[line][:column] if line < len(lines) else ""
    scope = scope_at(app, lines, line, rules_file)
    if m := _ENUM_BEFORE.search(prefix):
        t = type_of(m.group("path"), scope)
        values = t.enum_values if t is not None and t.enum_values is not None else ()
        return [Suggestion(v, "value", str(t)) for v in values if v.startswith(m.group("partial"))]
    if m := _PATH_BEFORE.search(prefix):
        t = type_of(m.group("path"), scope)
        entity = scope.entities.get(t.entity or "") if t and t.kind == T.ENTITY else None
        if entity is None:
            return []
        return [_field(f) for f in entity.fields.values() if f.name.startswith(m.group("partial"))]
    word = _WORD_BEFORE.search(prefix)
    partial = (word.group("partial") if word else None) or ""
    found = [Suggestion(name, "name", str(t)) for name, t in scope.roots.items()]
    found += [Suggestion(b.name, "function", b.signature, b.doc) for b in REGISTRY.values()]
    found += [Suggestion(word, "keyword", "keyword") for word in keywords()]
    return [s for s in found if s.label.startswith(partial)]


def _field(f: FieldDef) -> Suggestion:
    label = f.label.get("en") or f.label.get("zh") or ""
    return Suggestion(f.name, "field", str(field_type(f)), label)


def hover(app: App, lines: list[str], line: int, column: int, rules_file: bool) -> str | None:
    """Markdown for the word under 0-based (``line``, ``column``): a builtin's
    signature and docs, or a field path's type (up to the segment under the cursor)
    with the field's label; None when there is nothing to say."""
    if line >= len(lines):
        return None
    text = lines[line]
    start = end = column
    while start > 0 and _PATH_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and re.match(r"\w", text[end]):
        end += 1
    path = text[start:end].strip(".?")
    if not path:
        return None
    if "." not in path and path in REGISTRY and text[end:].lstrip().startswith("("):
        b = REGISTRY[path]
        return f"```\n{b.signature}\n```\n{b.doc}"
    scope = scope_at(app, lines, line, rules_file)
    t = type_of(path, scope)
    if t is None:
        return None
    out = f"`{path}`: {t}"
    head, _, name = path.rpartition(".")
    owner = type_of(head.rstrip("?"), scope) if head else None
    entity = scope.entities.get(owner.entity or "") if owner and owner.kind == T.ENTITY else None
    fdef = entity.fields.get(name) if entity else None
    if fdef is not None:
        labels = " / ".join(v for v in (fdef.label.get("en"), fdef.label.get("zh")) if v)
        notes = [n for n in (labels, fdef.help.get("en") or fdef.help.get("zh")) if n]
        out += "".join(f"\n\n{n}" for n in notes)
    return out
