"""Check roles, forms, flows, channels and notifications beyond their schemas.

Their runtimes come from the platform; here every name they use is resolved
(entities, fields, roles, states, forms, notifications, policies, calendars)
and every embedded expression is parsed and type-checked in its scope:
row filters see ``record`` and ``user``; form conditions, flow guards, timers
and notification conditions see the entity's record; channel transforms see
``value``. Each item becomes a :class:`CheckedItem`: its validated data plus
the checked expressions by YAML path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jinja2

from . import ast
from . import types as T
from .ast import parse_duration
from .checker import ExprChecker, Scope
from .diagnostics import DiagnosticBag
from .model import EntityDef, FieldDef, field_type
from .parser import parse_expression
from .source import Span
from .suggest import did_you_mean
from .tables import table_roots
from .yaml_loader import YamlDocument, value_at

USER_ENTITY = "user"

_WIDGET_KINDS = {
    "photo": ("attachment",), "file": ("attachment",), "signature": ("attachment",),
    "geo": ("geo",), "date": ("date",), "datetime": ("datetime",), "duration": ("duration",),
    "number": ("integer", "decimal"), "checkbox": ("boolean", "list"),
    "select": ("enum", "reference"), "radio": ("enum", "boolean"), "tags": ("list",),
    "text": ("string", "integer", "decimal"), "textarea": ("string", "text"),
}


@dataclass(frozen=True)
class CheckedItem:
    """A form / flow / channel / notification / role set: data plus checked expressions."""

    kind: str
    name: str
    file: str
    data: dict[str, Any]
    exprs: dict[tuple, ast.Expr] = field(default_factory=dict)


@dataclass
class Context:
    """Everything item checks may refer to."""

    entities: dict[str, EntityDef]
    user_entity: EntityDef
    roles: set[str]
    forms: dict[str, str]  # form -> entity
    flows: set[str]
    notifications: set[str]
    policies: dict[str, str]
    calendars: set[str]
    tables: dict[str, Any]
    broken: set[tuple[str, str]]
    bag: DiagnosticBag

    def scope(self, **roots: T.Type) -> Scope:
        return Scope(dict(roots), {**self.entities, USER_ENTITY: self.user_entity},
                     silent={name for kind, name in self.broken if kind == "table"})

    def entity_type(self, name: str) -> T.Type:
        return T.entity_type(name) if name in self.entities else T.T_ERROR


class _ItemChecker:
    def __init__(self, doc: YamlDocument, ctx: Context, kind: str) -> None:
        self.doc, self.ctx, self.kind = doc, ctx, kind
        self.bag = ctx.bag
        self.exprs: dict[tuple, ast.Expr] = {}

    def expr(self, path: tuple, scope: Scope, *, condition: bool = False,
             expected: T.Type | None = None, what: str = "value") -> ast.Expr | None:
        node = parse_expression(self._get(path), self.doc.origin(path), self.bag)
        if node is None:
            return None
        checker = ExprChecker(scope, self.bag, self.doc.path)
        if condition:
            typed = checker.check_condition(node, what)
        elif expected is not None:
            typed = checker.check_value(node, expected, what)
        else:
            typed = checker.check(node)
        self.exprs[path] = typed
        return typed

    def name_in(self, path: tuple, pool, what: str) -> bool:
        value = self._get(path)
        if value in pool or any(b[1] == value for b in self.ctx.broken):
            return True
        self.bag.error("E1021", f"unknown {what} '{value}'", self.doc.path, self.doc.span(path),
                       did_you_mean(str(value), pool) or (
                           f"defined: {', '.join(sorted(pool))}" if pool else None))
        return False

    def entity(self, path: tuple) -> EntityDef | None:
        name = self._get(path)
        if name in self.ctx.entities:
            return self.ctx.entities[name]
        if ("entity", name) not in self.ctx.broken:
            self.name_in(path, self.ctx.entities, "entity")
        return None

    def field_of(self, entity: EntityDef | None, path: tuple,
                 is_key: bool = False) -> FieldDef | None:
        """The field named by the value at ``path`` (or by its last key, ``is_key``)."""
        if entity is None:
            return None
        name = path[-1] if is_key else self._get(path)
        fdef = entity.fields.get(name)
        if fdef is None:
            span = self.doc.key_span(path) if is_key else self.doc.span(path)
            self.bag.error("E3001", f"unknown field '{name}' on {entity.name}", self.doc.path,
                           span, did_you_mean(name, entity.fields))
        return fdef

    def event(self, path: tuple, entity: str) -> None:
        value = self._get(path)
        if value.split(".", 1)[0] != entity:
            self.bag.error("E3020", f"event '{value}' is not an event of {entity}",
                           self.doc.path, self.doc.span(path), f"write {entity}.<event>")

    def effects(self, path: tuple, entity: EntityDef | None, scope: Scope) -> None:
        for i, eff in enumerate(self._get(path) or []):
            p = path + (i,)
            if "set" in eff:
                for fname in eff["set"]:
                    fdef = self.field_of(entity, p + ("set", fname), is_key=True) \
                        if entity else None
                    if fdef is None and entity is not None:
                        continue
                    expected = field_type(fdef) if fdef else None
                    self.expr(p + ("set", fname), scope, expected=expected,
                              what=f"{entity.name}.{fname}" if entity else "value")
            if "notify" in eff:
                self.name_in(p + ("notify",), self.ctx.notifications, "notification")
            if "request_dispatch" in eff:
                self.name_in(p + ("request_dispatch",), self.ctx.policies, "dispatch policy")
            if "start_flow" in eff:
                self.name_in(p + ("start_flow",), self.ctx.flows, "flow")

    def _get(self, path: tuple) -> Any:
        """The value at ``path``, or None where a key along it is absent."""
        return value_at(self.doc.data, path)

    def done(self, name: str) -> CheckedItem:
        return CheckedItem(self.kind, name, self.doc.path, self.doc.data, dict(self.exprs))


def check_roles(doc: YamlDocument, ctx: Context) -> CheckedItem:
    """Permissions name real entities, fields and actions; row filters type-check."""
    c = _ItemChecker(doc, ctx, "roles")
    for role, spec in doc.data["roles"].items():
        for ent_name, perm in (spec.get("permissions") or {}).items():
            base = ("roles", role, "permissions", ent_name)
            entity = ctx.entities.get(ent_name)
            if entity is None:
                if ("entity", ent_name) not in ctx.broken:
                    ctx.bag.error("E1021", f"unknown entity '{ent_name}'", doc.path,
                                  doc.key_span(base), did_you_mean(ent_name, ctx.entities))
                continue
            if "rows" in perm:
                c.expr(base + ("rows",), ctx.scope(record=T.entity_type(ent_name),
                                                   user=T.entity_type(USER_ENTITY)),
                       condition=True, what="a row filter")
            if "rows_via" in perm:
                _check_rows_via(doc, ctx, base + ("rows_via",), ent_name)
            for mode, names in (perm.get("fields") or {}).items():
                if names == "*":
                    continue
                for i, _ in enumerate(names):
                    c.field_of(entity, base + ("fields", mode, i))
    return c.done("roles")


def _check_rows_via(doc: YamlDocument, ctx: Context, path: tuple, ent_name: str) -> None:
    """``rows_via: entity.field`` names a reference field to ``ent_name`` on an entity
    whose own permissions do not use ``rows_via`` (one hop: no chains, no cycles)."""
    source, _, field = doc.data["roles"][path[1]]["permissions"][ent_name]["rows_via"] \
        .partition(".")
    entity = ctx.entities.get(source)
    if entity is None:
        ctx.bag.error("E1021", f"unknown entity '{source}'", doc.path, doc.span(path),
                      did_you_mean(source, ctx.entities))
        return
    fdef = entity.fields.get(field)
    if fdef is None:
        ctx.bag.error("E3001", f"unknown field '{field}' on {source}", doc.path, doc.span(path),
                    did_you_mean(field, entity.fields))
        return
    if fdef.kind != "reference" or fdef.reference != ent_name:
        links = [f"{source}.{f.name}" for f in entity.fields.values()
                 if f.kind == "reference" and f.reference == ent_name]
        ctx.bag.error("E1014", f"{source}.{field} does not reference {ent_name}", doc.path,
                      doc.span(path), "name a reference field to " + ent_name + (
                          ": " + ", ".join(links) if links else ""))
        return
    for role, spec in doc.data["roles"].items():
        if "rows_via" in ((spec.get("permissions") or {}).get(source) or {}):
            ctx.bag.error("E1014", f"rows_via goes through {source}, whose rows role '{role}' "
                          "limits with rows_via too", doc.path, doc.span(path),
                          f"limit {source} with a rows filter instead: rows_via takes one hop")
            return


def check_form(doc: YamlDocument, ctx: Context) -> CheckedItem:
    c = _ItemChecker(doc, ctx, "form")
    data = doc.data
    entity = c.entity(("entity",))
    for i, _ in enumerate(data.get("roles", [])):
        if data["roles"][i] != "public":
            c.name_in(("roles", i), ctx.roles, "role")
    scope = ctx.scope(**{data["entity"]: ctx.entity_type(data["entity"])})
    if "available_if" in data:
        c.expr(("available_if",), scope, condition=True, what="'available_if'")
    seen: set[str] = set()
    for s, section in enumerate(data["sections"]):
        for f, item in enumerate(section["fields"]):
            path = ("sections", s, "fields", f)
            fdef = c.field_of(entity, path + ("field",))
            if fdef is not None:
                if fdef.name in seen:
                    ctx.bag.error("E1020", f"field '{fdef.name}' appears twice in the form",
                                  doc.path, doc.span(path + ("field",)))
                seen.add(fdef.name)
                widget = item.get("widget")
                if widget in _WIDGET_KINDS and fdef.kind not in _WIDGET_KINDS[widget]:
                    ctx.bag.error("E3021", f"widget '{widget}' does not fit the {fdef.kind} "
                                  f"field '{fdef.name}'", doc.path, doc.span(path + ("widget",)),
                                  f"'{widget}' is for {' / '.join(_WIDGET_KINDS[widget])} "
                                  "fields")
            for key in ("visible_if", "required_if"):
                if key in item:
                    c.expr(path + (key,), scope, condition=True, what=f"'{key}'")
    return c.done(data["form"])


def check_flow(doc: YamlDocument, ctx: Context) -> CheckedItem:
    """States and targets resolve; guards, timers, effects, SLA targets and escalations check."""
    c = _ItemChecker(doc, ctx, "flow")
    data = doc.data
    ent_name = data["entity"]
    entity = c.entity(("entity",))
    roots = {ent_name: ctx.entity_type(ent_name)}
    t_roots, t_entities = table_roots(ctx.tables, ent_name, set(roots))
    scope = ctx.scope(**roots, **t_roots)
    scope.entities.update(t_entities)
    states = _all_states(data["states"])
    seen: dict[str, tuple] = {}
    for path in _state_paths(data["states"], ("states",)):
        if path[-1] in seen:
            ctx.bag.error("E1020", f"state '{path[-1]}' is already defined in this flow",
                          doc.path, doc.key_span(path),
                          "state names are unique across a flow, regions included")
        seen.setdefault(path[-1], path)
    c.name_in(("initial",), states, "state")

    def transitions(path: tuple) -> None:
        for i, tr in enumerate(c._get(path) or []):
            p = path + (i,)
            c.name_in(p + ("to",), states, "state")
            if "on" in tr:
                c.event(p + ("on",), ent_name)
            for j, _ in enumerate(tr.get("roles", [])):
                c.name_in(p + ("roles", j), ctx.roles, "role")
            if "action" in tr and not tr.get("roles"):
                ctx.bag.error("E1013", f"action '{tr['action']}' names no role that may take "
                              "it", doc.path, doc.span(p + ("action",)),
                              "add roles: [dispatcher, ...]")
            if "form" in tr:
                c.name_in(p + ("form",), ctx.forms, "form")
            for key in ("guard", "when"):
                if key in tr:
                    c.expr(p + (key,), scope, condition=True, what=f"a transition's '{key}'")
            c.effects(p + ("effects",), entity, scope)

    def walk(states_map: dict, base: tuple) -> None:
        for sname, state in states_map.items():
            sp = base + (sname,)
            c.effects(sp + ("on_enter",), entity, scope)
            c.effects(sp + ("on_exit",), entity, scope)
            transitions(sp + ("transitions",))
            for t, timer in enumerate(state.get("timers", [])):
                tp = sp + ("timers", t)
                if "after" in timer:
                    c.expr(tp + ("after",), scope, expected=T.T_DURATION, what="a timer's 'after'")
                if "at" in timer:
                    c.expr(tp + ("at",), scope, expected=T.T_DATETIME, what="a timer's 'at'")
                if "to" in timer:
                    c.name_in(tp + ("to",), states, "state")
                elif "emit" not in timer and "effects" not in timer:
                    ctx.bag.error("E1013", "timer has no handler: give it 'to', 'emit' or "
                                  "'effects'", doc.path, doc.span(tp))
                c.effects(tp + ("effects",), entity, scope)
            if "join" in state:
                c.name_in(sp + ("join",), states, "state")
            for rname, region in (state.get("regions") or {}).items():
                rp = sp + ("regions", rname)
                c.name_in(rp + ("initial",), states, "state")
                walk(region["states"], rp + ("states",))

    walk(data["states"], ("states",))
    transitions(("global_transitions",))
    for cname, clock in (data.get("sla_clocks") or {}).items():
        cp = ("sla_clocks", cname)
        if "target" in clock:
            c.expr(cp + ("target",), scope, expected=T.T_DURATION, what="an SLA target")
        for key in ("start_on",):
            if key in clock:
                c.event(cp + (key,), ent_name)
        for i, _ in enumerate(clock.get("stop_on", [])):
            c.event(cp + ("stop_on", i), ent_name)
        for i, _ in enumerate(clock.get("pause_in", [])):
            c.name_in(cp + ("pause_in", i), states, "state")
        if "calendar" in clock:
            c.name_in(cp + ("calendar",), ctx.calendars, "calendar")
    for ename, ladder in (data.get("escalations") or {}).items():
        _check_escalation(c, ("escalations", ename), ladder, states,
                          set(data.get("sla_clocks") or {}), ent_name)
    return c.done(data["flow"])


def _check_escalation(c: _ItemChecker, path: tuple, ladder: dict[str, Any], states: set[str],
                      clocks: set[str], entity: str) -> None:
    """States, clock, notifications and events resolve; levels fire in time order."""
    for i, _ in enumerate(ladder.get("while_in", [])):
        c.name_in(path + ("while_in", i), states, "state")
    if "clock" in ladder:
        c.name_in(path + ("clock",), clocks, "SLA clock")
    previous: tuple[int, str, timedelta] | None = None
    for i, level in enumerate(ladder.get("levels", [])):
        lp = path + ("levels", i)
        if "notify" in level:
            c.name_in(lp + ("notify",), c.ctx.notifications, "notification")
        if "." in str(level.get("emit", "")):
            c.event(lp + ("emit",), entity)
        key = "after" if "after" in level else "before"
        try:
            offset = parse_duration(str(level[key]))
        except (KeyError, ValueError):
            continue  # the schema reported it
        offset = -offset if key == "before" else offset
        written = f"{key}: {level[key]}"
        if previous is not None and offset <= previous[2]:
            when = "at the same time as" if offset == previous[2] else "before"
            c.bag.error("E1015", f"level {i + 1} of escalation '{path[-1]}' ({written}) fires "
                        f"{when} level {previous[0] + 1} ({previous[1]})", c.doc.path,
                        c.doc.span(lp + (key,)),
                        "list the levels in the order they fire: 'before' levels first "
                        "(longest first), then 'after' levels (shortest first)")
        previous = (i, written, offset)


def _state_paths(states: dict, base: tuple) -> list[tuple]:
    """YAML paths of every state, regions included, in file order."""
    out = []
    for name, state in states.items():
        out.append(base + (name,))
        for rname, region in (state.get("regions") or {}).items():
            out.extend(_state_paths(region["states"], base + (name, "regions", rname,
                                                              "states")))
    return out


def _all_states(states: dict) -> set[str]:
    names = set(states)
    for state in states.values():
        for region in (state.get("regions") or {}).values():
            names |= _all_states(region["states"])
    return names


def check_channel(doc: YamlDocument, ctx: Context) -> CheckedItem:
    c = _ItemChecker(doc, ctx, "channel")
    data = doc.data
    entity = c.entity(("entity",))
    for key, target in data["mapping"].items():
        path = ("mapping", key)
        fname_path = path + ("field",) if isinstance(target, dict) else path
        fdef = c.field_of(entity, fname_path)
        if isinstance(target, dict) and "transform" in target:
            expected = field_type(fdef) if fdef else None
            c.expr(path + ("transform",), ctx.scope(value=T.T_STRING.with_null(True, True)),
                   expected=expected, what=f"transform into '{target['field']}'")
    for fname in data.get("defaults", {}) or {}:
        c.field_of(entity, ("defaults", fname), is_key=True)
    return c.done(data["channel"])


_JINJA = jinja2.Environment(autoescape=True)


def check_notification(doc: YamlDocument, ctx: Context) -> CheckedItem:
    c = _ItemChecker(doc, ctx, "notification")
    data = doc.data
    ent_name = data["entity"]
    c.entity(("entity",))
    scope = ctx.scope(**{ent_name: ctx.entity_type(ent_name)})
    if "on" in data:
        c.event(("on",), ent_name)
    if "when" in data:
        c.expr(("when",), scope, condition=True, what="a notification's 'when'")
    for i, target in enumerate(data["to"]):
        if "role" in target:
            c.name_in(("to", i, "role"), ctx.roles, "role")
        if "field" in target:
            c.expr(("to", i, "field"), scope, what="a recipient field")
    if "quiet_hours" in data:
        c.name_in(("quiet_hours",), ctx.calendars, "calendar")
    for key in ("subject", "body"):
        value = data.get(key)
        texts = {"": value} if isinstance(value, str) else (value or {})
        for lang, text in texts.items():
            path = (key, lang) if lang else (key,)
            try:
                _JINJA.parse(text)
            except jinja2.TemplateSyntaxError as exc:
                origin = doc.origin(path)
                line, col = origin.map(exc.lineno or 1, 1)
                ctx.bag.error("E1010", f"template syntax error: {exc.message}", doc.path,
                              Span(line, col, line, col + 1),
                              "templates use Jinja syntax: {{ work_order.title }}")
    return c.done(data["notification"])
