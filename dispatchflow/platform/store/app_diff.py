"""What changed between two app versions, in the author's terms (not a text diff).

:func:`diff_apps` compares two compiled :class:`~dispatchflow.dsl.compiler.App` s
item by item: the app settings, entities and their fields, rule sets and rules,
decision tables, dispatch policies, flows, forms, roles, channels,
notifications and bundle test cases. Expressions are compared as checked syntax
trees (positions ignored) and YAML as data, so reformatting, comments and
moving an item to another file give no change. :func:`render_changes` prints
the changes as text lines grouped by item kind.

Pure: reads two Apps, touches no database.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ...dsl import ast
from ...dsl.compiler import App
from ...dsl.items import CheckedItem
from ...dsl.model import EntityDef, FieldDef
from ...dsl.tables import DecisionTable

#: Item kinds in the order :func:`render_changes` groups them, with their headings.
GROUPS = (("app", "app"), ("entity", "entities"), ("field", "fields"),
          ("ruleset", "rule sets"), ("rule", "rules"), ("table", "decision tables"),
          ("policy", "dispatch policies"), ("flow", "flows"), ("form", "forms"),
          ("role", "roles"), ("channel", "channels"), ("notification", "notifications"),
          ("test", "bundle tests"))


@dataclass(frozen=True)
class Change:
    """One difference. ``kind``: added / removed / changed; ``item``: e.g.
    ``field work_order.cost_surcharge``; ``detail``: e.g. ``type string -> text``."""

    kind: str
    item: str
    detail: str = ""

    @property
    def group(self) -> str:
        """The item kind (``field``, ``rule``, ...): the first word of ``item``."""
        return self.item.split(" ", 1)[0]


def diff_apps(a: App, b: App) -> list[Change]:
    """Every semantic difference from ``a`` (old) to ``b`` (new), grouped by item kind."""
    changes: list[Change] = []
    changes += _app_settings(a, b)
    changes += _entities(a, b)
    changes += _rulesets(a.rulesets, b.rulesets)
    changes += _keyed(a.tables, b.tables, "table", _table)
    changes += _keyed(a.policies, b.policies, "policy", _policy)
    changes += _keyed(a.flows, b.flows, "flow", _flow)
    changes += _keyed(a.forms, b.forms, "form", _form)
    changes += _roles(a.roles, b.roles)
    changes += _keyed(a.channels, b.channels, "channel", _generic_item)
    changes += _keyed(a.notifications, b.notifications, "notification", _generic_item)
    changes += _tests(a, b)
    order = {g: i for i, (g, _) in enumerate(GROUPS)}
    return sorted(changes, key=lambda c: order.get(c.group, len(order)))


def render_changes(changes: Sequence[Change]) -> list[str]:
    """Readable lines: a heading per item kind, then ``+`` / ``-`` / ``~`` lines."""
    if not changes:
        return ["no changes"]
    headings = dict(GROUPS)
    lines: list[str] = []
    group = None
    for c in changes:
        if c.group != group:
            group = c.group
            lines.append(f"{headings.get(group, group)}:")
        sign = {"added": "+", "removed": "-"}.get(c.kind, "~")
        lines.append(f"  {sign} {c.item}" + (f": {c.detail}" if c.detail else ""))
    return lines


# ------------------------------------------------------------------ helpers


def _show(value: Any) -> str:
    """A value as people write it in a bundle."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _keyed(old: dict[str, Any], new: dict[str, Any], what: str,
           compare: Any) -> list[Change]:
    """Added and removed names, then ``compare(item, a, b)`` for the common ones."""
    out = [Change("removed", f"{what} {n}") for n in old if n not in new]
    out += [Change("added", f"{what} {n}") for n in new if n not in old]
    for name in old:
        if name in new:
            out += compare(f"{what} {name}", old[name], new[name])
    return out


def _listed(label: str, old: Iterable[Any], new: Iterable[Any]) -> list[str]:
    """``label added: x, y`` / ``label removed: z`` for two collections of plain values."""
    old_l, new_l = list(old), list(new)
    added = [_show(v) for v in new_l if v not in old_l]
    removed = [_show(v) for v in old_l if v not in new_l]
    out = []
    if added:
        out.append(f"{label} added: {', '.join(added)}")
    if removed:
        out.append(f"{label} removed: {', '.join(removed)}")
    return out


# ------------------------------------------------------------------ app, entities


def _app_settings(a: App, b: App) -> list[Change]:
    out = []
    for attr in ("name", "version", "timezone", "default_locale"):
        if getattr(a, attr) != getattr(b, attr):
            out.append(Change("changed", "app", f"{attr} {_show(getattr(a, attr))} -> "
                                                f"{_show(getattr(b, attr))}"))
    if a.title != b.title:
        out.append(Change("changed", "app", "title changed"))
    for name in a.calendars.keys() | b.calendars.keys():
        if name not in b.calendars:
            out.append(Change("changed", "app", f"calendar {name} removed"))
        elif name not in a.calendars:
            out.append(Change("changed", "app", f"calendar {name} added"))
        elif a.calendars[name] != b.calendars[name]:
            out.append(Change("changed", "app", f"calendar {name} changed"))
    return sorted(out, key=lambda c: c.detail)


_FIELD_ATTRS = {"kind": "type", "minimum": "min", "maximum": "max"}
_QUIET_ATTRS = {"label", "help"}  # dicts of translations: say "changed", not the text
_SKIP_ATTRS = {"name", "span", "system", "enum_values", "reference"}


def _entities(a: App, b: App) -> list[Change]:
    old = {**a.entities, "user": a.user}
    new = {**b.entities, "user": b.user}
    out = [Change("removed", f"entity {n}") for n in old if n not in new]
    out += [Change("added", f"entity {n}", _show(new[n].label.get("en") or ""))
            for n in new if n not in old]
    for name, e_old in old.items():
        if name in new:
            out += _entity(name, e_old, new[name])
    return out


def _entity(name: str, a: EntityDef, b: EntityDef) -> list[Change]:
    out = []
    for attr in ("label", "description", "title_field", "sensitive"):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb:
            detail = f"{attr} changed" if isinstance(va, dict) else \
                f"{attr} {_show(va)} -> {_show(vb)}"
            out.append(Change("changed", f"entity {name}", detail))
    for fname, f in a.fields.items():
        if fname not in b.fields and not f.system:
            out.append(Change("removed", f"field {name}.{fname}", f.kind))
    for fname, f in b.fields.items():
        if fname not in a.fields and not f.system:
            out.append(Change("added", f"field {name}.{fname}", _field_summary(f)))
    for fname, f in a.fields.items():
        if fname in b.fields and not f.system:
            item = f"field {name}.{fname}"
            out += [Change("changed", item, d) for d in _field_details(f, b.fields[fname])]
    return out


def _field_summary(f: FieldDef) -> str:
    parts = [f.kind if f.kind != "reference" else f"reference to {f.reference}"]
    if f.required:
        parts.append("required")
    if f.kind == "enum":
        parts.append("values " + _show([v.value for v in f.enum_values]))
    return ", ".join(parts)


def _field_details(a: FieldDef, b: FieldDef) -> list[str]:
    out = []
    for fd in fields(FieldDef):
        attr = fd.name
        if attr in _SKIP_ATTRS:
            continue
        va, vb = getattr(a, attr), getattr(b, attr)
        if va == vb:
            continue
        label = _FIELD_ATTRS.get(attr, attr)
        out.append(f"{label} changed" if attr in _QUIET_ATTRS else
                   f"{label} {_show(va)} -> {_show(vb)}")
    if a.reference != b.reference:
        out.append(f"reference {_show(a.reference)} -> {_show(b.reference)}")
    values_a = [v.value for v in a.enum_values]
    values_b = [v.value for v in b.enum_values]
    moved = _listed("enum values", values_a, values_b)
    out += moved
    if not moved and values_a != values_b:
        out.append("enum value order changed")
    labels_a = {v.value: v.label for v in a.enum_values}
    changed = [v.value for v in b.enum_values if v.value in labels_a
               and labels_a[v.value] != v.label]
    if changed:
        out.append(f"enum labels changed: {', '.join(changed)}")
    return out


# ------------------------------------------------------------------ rules


def _rulesets(old: dict[str, ast.RulesetDecl], new: dict[str, ast.RulesetDecl]) -> list[Change]:
    out = [Change("removed", f"ruleset {n}") for n in old if n not in new]
    out += [Change("added", f"ruleset {n}", f"on {r.entity}.{r.event}, "
                   f"{len(r.rules)} rules") for n, r in new.items() if n not in old]
    for name, a in old.items():
        b = new.get(name)
        if b is None:
            continue
        item = f"ruleset {name}"
        if (a.entity, a.event) != (b.entity, b.event):
            out.append(Change("changed", item, f"trigger {a.entity}.{a.event} -> "
                                               f"{b.entity}.{b.event}"))
        if a.hit != b.hit:
            out.append(Change("changed", item, f"hit {a.hit} -> {b.hit}"))
        rules_a = {r.name: r for r in a.rules}
        rules_b = {r.name: r for r in b.rules}
        common = [r for r in rules_a if r in rules_b]
        if common != [r for r in rules_b if r in rules_a]:
            out.append(Change("changed", item, "rule order changed"))
        for rname in rules_a:
            if rname not in rules_b:
                out.append(Change("removed", f'rule {name}/"{rname}"'))
        for rname, r in rules_b.items():
            if rname not in rules_a:
                out.append(Change("added", f'rule {name}/"{rname}"', f"salience {r.salience}"))
        for rname in common:
            ra, rb = rules_a[rname], rules_b[rname]
            ritem = f'rule {name}/"{rname}"'
            if ra.salience != rb.salience:
                out.append(Change("changed", ritem, f"salience {ra.salience} -> {rb.salience}"))
            if ra.condition != rb.condition:
                out.append(Change("changed", ritem, "condition changed"))
            if ra.actions != rb.actions:
                out.append(Change("changed", ritem, "actions changed"))
    return out


def _table(item: str, a: DecisionTable, b: DecisionTable) -> list[Change]:
    details = []
    if a.entity != b.entity:
        details.append(f"entity {a.entity} -> {b.entity}")
    if (a.hit, a.aggregate) != (b.hit, b.aggregate):
        details.append(f"hit {_hit(a)} -> {_hit(b)}")
    exprs_a = [i.expr for i in a.inputs]
    exprs_b = [i.expr for i in b.inputs]
    added = [i.text for i in b.inputs if i.expr not in exprs_a]
    removed = [i.text for i in a.inputs if i.expr not in exprs_b]
    if added:
        details.append(f"inputs added: {', '.join(added)}")
    if removed:
        details.append(f"inputs removed: {', '.join(removed)}")
    if not added and not removed and exprs_a != exprs_b:
        details.append("input order changed")
    outs_a = {o.name: o for o in a.outputs}
    outs_b = {o.name: o for o in b.outputs}
    details += _listed("outputs", list(outs_a), list(outs_b))
    for name, o in outs_a.items():
        if name in outs_b:
            if str(o.type) != str(outs_b[name].type):
                details.append(f"output {name} type {o.type} -> {outs_b[name].type}")
            if o.priority != outs_b[name].priority:
                details.append(f"output {name} priority order changed")
    if len(a.rows) != len(b.rows):
        details.append(f"rows {len(a.rows)} -> {len(b.rows)}")
    details += _row_changes(a.rows, b.rows)
    return [Change("changed", item, d) for d in details]


def _hit(t: DecisionTable) -> str:
    return f"{t.hit} {t.aggregate}" if t.aggregate else t.hit


def _row_changes(old: Sequence[Any], new: Sequence[Any]) -> list[str]:
    """Rows added, removed or changed, matched as sequences (an inserted row is one change)."""
    pool: list[Any] = []

    def key(row: Any) -> int:
        sig = (row.cells, row.outputs, row.note)
        for i, seen in enumerate(pool):
            if seen == sig:
                return i
        pool.append(sig)
        return len(pool) - 1
    keys_a = [key(r) for r in old]
    keys_b = [key(r) for r in new]
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=keys_a, b=keys_b,
                                                      autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            out += [f"row {j1 + k + 1} changed" for k in range(i2 - i1)]
            continue
        if op in ("replace", "delete"):
            out += [f"row {i + 1} removed" for i in range(i1, i2)]
        if op in ("replace", "insert"):
            out += [f"row {j + 1} added" for j in range(j1, j2)]
    return out


def _policy(item: str, a: ast.PolicyDecl, b: ast.PolicyDecl) -> list[Change]:
    details = []
    if (a.entity, a.pool) != (b.entity, b.pool):
        details.append(f"for {a.entity} from {a.pool} -> for {b.entity} from {b.pool}")
    for what, clauses_a, clauses_b, sig in (
            ("require", a.requires, b.requires, lambda c: c.condition),
            ("score", a.scores, b.scores, lambda c: (c.value, c.guard)),
            ("tiebreak", a.tiebreaks, b.tiebreaks, lambda c: (c.value, c.descending))):
        sigs_a = [sig(c) for c in clauses_a]
        sigs_b = [sig(c) for c in clauses_b]
        for c in clauses_b:
            if sig(c) not in sigs_a:
                details.append(f"{what} added: {_clause_label(c)}")
        for c in clauses_a:
            if sig(c) not in sigs_b:
                details.append(f"{what} removed: {_clause_label(c)}")
        common_a = [s for s in sigs_a if s in sigs_b]
        if common_a != [s for s in sigs_b if s in sigs_a]:
            details.append(f"{what} order changed")
        for clause, s in zip(clauses_a, sigs_a, strict=True):
            if s in sigs_b:
                was = getattr(clause, "label", None)
                now = getattr(clauses_b[sigs_b.index(s)], "label", None)
                if was != now:
                    details.append(f"{what} label changed: {was} -> {now}")
    details += _offer(a.offer, b.offer)
    return [Change("changed", item, d) for d in details]


def _clause_label(c: Any) -> str:
    label = getattr(c, "label", None)
    if label:
        return str(label)
    return "descending" if getattr(c, "descending", False) else "ascending"


def _offer(a: ast.OfferClause | None, b: ast.OfferClause | None) -> list[str]:
    if a is None or b is None:
        return [] if a is b else [f"offer {'added' if a is None else 'removed'}"]
    out = []
    for attr, label in (("strategy", "offer"), ("top_k", "offer top"),
                        ("retries", "retries"), ("escalate_to_role", "escalate to role")):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb:
            out.append(f"{label} {_show(va)} -> {_show(vb)}")
    if a.accept_within != b.accept_within:
        out.append("accept window changed")
    return out


# ------------------------------------------------------------------ YAML items


def _canonical(item: CheckedItem) -> Any:
    """The item's data with every checked expression replaced by its syntax tree."""
    data = copy.deepcopy(item.data)
    for path, node in item.exprs.items():
        target: Any = data
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = node
        except (KeyError, IndexError, TypeError):
            continue
    return data


def _changed_keys(a: dict[str, Any], b: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    skipped = set(skip)
    return [k for k in sorted(a.keys() | b.keys(), key=str)
            if k not in skipped and a.get(k) != b.get(k)]


def _generic_item(item: str, a: CheckedItem, b: CheckedItem) -> list[Change]:
    keys = _changed_keys(_canonical(a), _canonical(b))
    return [Change("changed", item, f"{', '.join(keys)} changed")] if keys else []


def _states(states: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for name, state in states.items():
        out[name] = state
        for region in (state.get("regions") or {}).values():
            _states(region.get("states") or {}, out)
    return out


def _transitions(states: dict[str, Any], global_: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sources = [(name, state.get("transitions") or []) for name, state in states.items()]
    for source, trs in [*sources, ("*", global_ or [])]:
        for tr in trs:
            trigger = tr.get("action") or tr.get("on") or "when"
            kind = "action" if "action" in tr else "on" if "on" in tr else "when"
            key = f"{source} -> {tr.get('to')} ({kind} {trigger})"
            n, base = 2, key
            while key in out:
                key, n = f"{base} #{n}", n + 1
            out[key] = tr
    return out


def _flow(item: str, a: CheckedItem, b: CheckedItem) -> list[Change]:
    da, db = _canonical(a), _canonical(b)
    states_a = _states(da.get("states") or {}, {})
    states_b = _states(db.get("states") or {}, {})
    details = [f"state {s} removed" for s in states_a if s not in states_b]
    details += [f"state {s} added" for s in states_b if s not in states_a]
    for s, state in states_a.items():
        if s in states_b:
            keys = _changed_keys(state, states_b[s], skip=("transitions", "regions"))
            if keys:
                details.append(f"state {s} changed: {', '.join(keys)}")
    tr_a = _transitions(states_a, da.get("global_transitions") or [])
    tr_b = _transitions(states_b, db.get("global_transitions") or [])
    details += [f"transition {k} removed" for k in tr_a if k not in tr_b]
    details += [f"transition {k} added" for k in tr_b if k not in tr_a]
    for k, tr in tr_a.items():
        if k in tr_b and tr != tr_b[k]:
            details.append(f"transition {k} changed: {', '.join(_changed_keys(tr, tr_b[k]))}")
    clocks_a, clocks_b = da.get("sla_clocks") or {}, db.get("sla_clocks") or {}
    details += [f"SLA clock {c} removed" for c in clocks_a if c not in clocks_b]
    details += [f"SLA clock {c} added" for c in clocks_b if c not in clocks_a]
    for c, clock in clocks_a.items():
        if c in clocks_b and clock != clocks_b[c]:
            details.append(f"SLA clock {c} changed: "
                           f"{', '.join(_changed_keys(clock, clocks_b[c]))}")
    for key in _changed_keys(da, db, skip=("states", "global_transitions", "sla_clocks")):
        details.append(f"{key} {_show(da.get(key))} -> {_show(db.get(key))}"
                       if key in ("initial", "entity") else f"{key} changed")
    return [Change("changed", item, d) for d in details]


def _form_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {f["field"]: f for s in data.get("sections") or [] for f in s.get("fields") or []}


def _form(item: str, a: CheckedItem, b: CheckedItem) -> list[Change]:
    da, db = _canonical(a), _canonical(b)
    fa, fb = _form_fields(da), _form_fields(db)
    details = [f"field {f} removed" for f in fa if f not in fb]
    details += [f"field {f} added" for f in fb if f not in fa]
    for f, spec in fa.items():
        if f in fb and spec != fb[f]:
            details.append(f"field {f} changed: {', '.join(_changed_keys(spec, fb[f]))}")
    if [f for f in fa if f in fb] != [f for f in fb if f in fa]:
        details.append("field order changed")
    details += _listed("roles", da.get("roles") or [], db.get("roles") or [])
    strip_a = [{k: v for k, v in s.items() if k != "fields"} for s in da.get("sections") or []]
    strip_b = [{k: v for k, v in s.items() if k != "fields"} for s in db.get("sections") or []]
    if strip_a != strip_b:
        details.append("sections changed")
    for key in _changed_keys(da, db, skip=("sections", "roles")):
        details.append(f"{key} {_show(da.get(key))} -> {_show(db.get(key))}"
                       if key == "entity" else f"{key} changed")
    return [Change("changed", item, d) for d in details]


def _roles(a: CheckedItem | None, b: CheckedItem | None) -> list[Change]:
    da = _canonical(a) if a is not None else {}
    db = _canonical(b) if b is not None else {}
    roles_a, roles_b = da.get("roles") or {}, db.get("roles") or {}
    out = [Change("removed", f"role {r}") for r in roles_a if r not in roles_b]
    out += [Change("added", f"role {r}") for r in roles_b if r not in roles_a]
    for role, spec in roles_a.items():
        if role not in roles_b:
            continue
        other = roles_b[role]
        item = f"role {role}"
        for key in _changed_keys(spec, other, skip=("permissions",)):
            out.append(Change("changed", item, f"{key} changed"))
        perms_a, perms_b = spec.get("permissions") or {}, other.get("permissions") or {}
        for ent in perms_a.keys() | perms_b.keys():
            pa, pb = perms_a.get(ent), perms_b.get(ent)
            if pa == pb:
                continue
            if pa is None or pb is None:
                out.append(Change("changed", item, f"permissions on {ent} "
                                                   f"{'added' if pa is None else 'removed'}"))
                continue
            for d in _listed(f"{ent}: allow", pa.get("allow") or [], pb.get("allow") or []):
                out.append(Change("changed", item, d))
            if pa.get("rows") != pb.get("rows"):
                out.append(Change("changed", item, f"{ent}: row filter changed"))
            if pa.get("fields") != pb.get("fields"):
                out.append(Change("changed", item, f"{ent}: field access changed"))
            for key in _changed_keys(pa, pb, skip=("allow", "rows", "fields")):
                out.append(Change("changed", item, f"{ent}: {key} changed"))
    return sorted(out, key=lambda c: (c.item, c.detail))


def _tests(a: App, b: App) -> list[Change]:
    def cases(app: App) -> dict[str, dict[str, Any]]:
        return {f'"{c["name"]}"': {k: v for k, v in c.items() if k not in ("_file", "_line")}
                for c in app.test_cases}
    return _keyed(cases(a), cases(b), "test",
                  lambda item, x, y: [Change("changed", item, "case changed")] if x != y else [])
