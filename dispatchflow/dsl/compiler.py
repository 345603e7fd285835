"""Compile a bundle folder into a checked :class:`App` (the IR every layer reads).

Pipeline: read files and validate schemas (``bundle``) -> entities and user
fields (``entities``) -> parse ``.rules`` files (``parser``) -> decision tables
(``tables``) -> rule sets and dispatch policies (``rules_check``) -> roles,
forms, flows, channels, notifications (``items``) -> bundle test cases. Every
stage reports into one :class:`DiagnosticBag`, so a single run lists every
problem; later stages skip what earlier ones could not build rather than
repeating the same mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from . import ast
from .bundle import LoadedBundle, load_bundle, load_sources
from .diagnostics import Diagnostic, DiagnosticBag
from .entities import build_entities, build_fields, check_references
from .items import (
    USER_ENTITY,
    CheckedItem,
    Context,
    check_channel,
    check_flow,
    check_form,
    check_notification,
    check_roles,
)
from .model import EntityDef, FieldDef
from .parser import parse_rules_file
from .rules_check import Names, check_policy, check_ruleset
from .suggest import did_you_mean
from .tables import DecisionTable, build_table

USER_SYSTEM_FIELDS = (
    FieldDef("id", "string", {"zh": "用户编号", "en": "User ID"}, system=True),
    FieldDef("name", "string", {"zh": "姓名", "en": "Name"}, system=True),
    FieldDef("roles", "list", {"zh": "角色", "en": "Roles"}, system=True),
)


@dataclass(frozen=True)
class App:
    """A compiled, checked bundle. Immutable; shared by every request and worker."""

    name: str
    version: str
    title: dict[str, str]
    default_locale: str
    timezone: str
    calendars: dict[str, Any]
    entities: dict[str, EntityDef]
    user: EntityDef
    rulesets: dict[str, ast.RulesetDecl]
    policies: dict[str, ast.PolicyDecl]
    tables: dict[str, DecisionTable]
    roles: CheckedItem | None
    forms: dict[str, CheckedItem]
    flows: dict[str, CheckedItem]
    channels: dict[str, CheckedItem]
    notifications: dict[str, CheckedItem]
    test_cases: tuple[dict[str, Any], ...]
    sources: dict[str, str] = field(repr=False)
    digest: str = ""
    dispatch: dict[str, Any] = field(default_factory=dict)  # app.yaml `dispatch:`
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # app.yaml `tags:`
    portal: dict[str, Any] = field(default_factory=dict)  # app.yaml `portal:`

    def rulesets_for(self, entity: str, event: str) -> list[ast.RulesetDecl]:
        """Rule sets triggered by ``entity.event``, in file order."""
        return [rs for rs in self.rulesets.values() if rs.entity == entity and rs.event == event]


@dataclass
class CompileResult:
    """The App (None when there are errors) and every diagnostic, sorted.

    ``draft`` is the app as far as it compiled, errors or not: editors read its
    entities for completion and hover; nothing may run it.
    """

    app: App | None
    diagnostics: list[Diagnostic]
    draft: App | None = None

    @property
    def ok(self) -> bool:
        return self.app is not None


def compile_bundle(root: str | Path, overrides: dict[str, str] | None = None) -> CompileResult:
    """Load, validate, parse, resolve and type-check a bundle folder.

    ``overrides`` ({relative path: text}) stand in for files on disk: an editor's
    open documents are checked as typed, with the rest of the folder.
    """
    bag = DiagnosticBag()
    loaded = load_bundle(root, bag, overrides)
    app = _compile(loaded, bag)
    return CompileResult(None if bag.has_errors else app, bag.sorted(), app)


def compile_sources(files: dict[str, str]) -> CompileResult:
    """Compile a bundle given as {relative path: text} (e.g. a stored app version)."""
    bag = DiagnosticBag()
    app = _compile(load_sources(files, bag), bag)
    return CompileResult(None if bag.has_errors else app, bag.sorted(), app)


def _unique_decls(decls: list, what: str, bag: DiagnosticBag) -> dict[str, Any]:
    """Rule sets or policies by name; a repeated name is E1020 at the later one."""
    out: dict[str, Any] = {}
    for decl in decls:
        if decl.name in out:
            span = getattr(decl, "header_span", None) or decl.span
            bag.error("E1020", f"{what} '{decl.name}' is already defined in "
                      f"{out[decl.name].file}", decl.file, span,
                      "rename one of them; names are unique across the bundle's .rules files")
            continue
        out[decl.name] = decl
    return out


def _named(docs: list, key: str, bag: DiagnosticBag) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for doc in docs:
        name = doc.data[key]
        if name in out:
            bag.error("E1020", f"{key} '{name}' is already defined in {out[name].path}",
                      doc.path, doc.span((key,)))
            continue
        out[name] = doc
    return out


def _compile(loaded: LoadedBundle, bag: DiagnosticBag) -> App:
    docs = loaded.documents
    broken = loaded.broken
    app_doc = docs["app"][0] if docs.get("app") else None
    app_data = app_doc.data if app_doc else {}
    calendars = app_data.get("calendars") or {}
    if app_doc is not None:
        _check_timezones(app_doc, bag)

    entity_docs = docs.get("entity", [])
    entities = build_entities(entity_docs, bag)
    roles_doc = docs["roles"][0] if docs.get("roles") else None
    user_fields: dict[str, FieldDef] = {f.name: f for f in USER_SYSTEM_FIELDS}
    if roles_doc is not None:
        user_fields.update(build_fields(roles_doc, ("user_fields",),
                                        roles_doc.data.get("user_fields") or {}, bag, "user"))
    user = EntityDef(USER_ENTITY, {"zh": "用户", "en": "User"}, user_fields,
                     roles_doc.path if roles_doc else "roles.yaml")
    docs_by_owner = {e.name: next(d for d in entity_docs if d.data["entity"] == e.name)
                     for e in entities.values()}
    fields_by_owner: dict[str, dict] = {n: e.fields for n, e in entities.items()}
    bases = {n: ("fields",) for n in entities}
    if roles_doc is not None:
        docs_by_owner[USER_ENTITY] = roles_doc
        fields_by_owner[USER_ENTITY] = user_fields
        bases[USER_ENTITY] = ("user_fields",)
    broken_entities = {name for kind, name in broken if kind == "entity"}
    check_references(docs_by_owner, fields_by_owner, entities, bag, broken_entities, bases)

    rules_files = [parse_rules_file(src, bag) for src in loaded.rules_sources]
    role_names = set((roles_doc.data.get("roles") or {}) if roles_doc else {})
    notif_docs = _named(docs.get("notification", []), "notification", bag)
    flow_docs = _named(docs.get("flow", []), "flow", bag)
    form_docs = _named(docs.get("form", []), "form", bag)
    channel_docs = _named(docs.get("channel", []), "channel", bag)
    policy_decls = _unique_decls([p for rf in rules_files for p in rf.policies],
                                 "dispatch policy", bag)
    names = Names(set(notif_docs), set(flow_docs), role_names,
                  {n: p.entity for n, p in policy_decls.items()}, broken)

    tables: dict[str, DecisionTable] = {}
    for doc in docs.get("table", []):
        tname = doc.data["table"]
        if tname in tables:
            bag.error("E1020", f"table '{tname}' is already defined in {tables[tname].file}",
                      doc.path, doc.span(("table",)))
            continue
        ent = doc.data["entity"]
        if ent not in entities and ("entity", ent) not in broken:
            bag.error("E1021", f"unknown entity '{ent}'", doc.path, doc.span(("entity",)),
                      did_you_mean(ent, entities))
        table = build_table(doc, entities, bag, ent in entities)
        if table is not None:
            tables[tname] = table
        else:
            broken.add(("table", tname))

    rulesets = {name: check_ruleset(rs, entities, names, bag, tables) for name, rs in
                _unique_decls([rs for rf in rules_files for rs in rf.rulesets], "ruleset",
                              bag).items()}
    policies = {n: check_policy(p, entities, names, bag) for n, p in policy_decls.items()}

    ctx = Context(entities, user, role_names,
                  {n: d.data["entity"] for n, d in form_docs.items()}, set(flow_docs),
                  set(notif_docs), names.policies, set(calendars), tables, broken, bag)
    roles = check_roles(roles_doc, ctx) if roles_doc is not None else None
    forms = {n: check_form(d, ctx) for n, d in form_docs.items()}
    flows = {n: check_flow(d, ctx) for n, d in flow_docs.items()}
    channels = {n: check_channel(d, ctx) for n, d in channel_docs.items()}
    notifications = {n: check_notification(d, ctx) for n, d in notif_docs.items()}
    cases = _check_cases(docs.get("testcases", []), rulesets, tables, policies, bag, broken)
    if app_doc is not None:
        _check_dispatch_settings(app_doc, policies, entities, bag)

    return App(
        name=app_data.get("app", ""), version=app_data.get("version", ""),
        title=app_data.get("title") or {}, default_locale=app_data.get("default_locale", "zh"),
        timezone=app_data.get("timezone", "UTC"), calendars=calendars, entities=entities,
        user=user, rulesets=rulesets, policies=policies, tables=tables, roles=roles,
        forms=forms, flows=flows, channels=channels, notifications=notifications,
        test_cases=tuple(cases), sources=dict(loaded.sources), digest=loaded.digest(),
        dispatch=dict(app_data.get("dispatch") or {}), tags=dict(app_data.get("tags") or {}),
        portal=dict(app_data.get("portal") or {}))


def _check_dispatch_settings(doc: Any, policies: dict[str, Any],
                             entities: dict[str, EntityDef], bag: DiagnosticBag) -> None:
    """``dispatch.batch`` names existing policies and a field of their entity."""
    batch = (doc.data.get("dispatch") or {}).get("batch") or {}
    base = ("dispatch", "batch")
    named = []
    for i, name in enumerate(batch.get("policies") or []):
        if name in policies:
            named.append(policies[name])
        else:
            bag.error("E1021", f"unknown dispatch policy '{name}'", doc.path,
                      doc.span(base + ("policies", i)), did_you_mean(name, policies))
    group = batch.get("group_by")
    for decl in named:
        entity = entities.get(decl.entity)
        if group and entity is not None and group not in entity.fields:
            bag.error("E1021", f"unknown field '{group}' on {decl.entity}", doc.path,
                      doc.span(base + ("group_by",)), did_you_mean(group, entity.fields))
            break


def _check_timezones(doc: Any, bag: DiagnosticBag) -> None:
    """The app's and each calendar's timezone must be a real IANA zone."""
    places = [(("timezone",), doc.data.get("timezone"))] + [
        (("calendars", name, "timezone"), cal.get("timezone"))
        for name, cal in (doc.data.get("calendars") or {}).items()]
    for path, zone in places:
        if zone is None:
            continue
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            bag.error("E1014", f"unknown timezone '{zone}'", doc.path, doc.span(path),
                      did_you_mean(zone, available_timezones()) or "use an IANA name such as "
                      "Asia/Shanghai")


def _check_cases(docs: list, rulesets: dict, tables: dict, policies: dict,
                 bag: DiagnosticBag, broken: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """Bundle test cases whose target exists, each tagged with its file and line."""
    cases = []
    events = {f"{rs.entity}.{rs.event}" for rs in rulesets.values()}
    for doc in docs:
        for i, case in enumerate(doc.data["cases"]):
            path = ("cases", i)
            targets = [k for k in ("event", "ruleset", "table", "policy") if k in case]
            if len(targets) != 1:
                bag.error("E6001", f"case \"{case['name']}\" must name exactly one of event, "
                          "ruleset, table or policy", doc.path, doc.span(path))
                continue
            kind = targets[0]
            pool = {"event": events, "ruleset": rulesets, "table": tables,
                    "policy": policies}[kind]
            if case[kind] not in pool and (kind, case[kind]) in broken:
                continue
            if case[kind] not in pool:
                bag.error("E6001", f"case \"{case['name']}\": unknown {kind} '{case[kind]}'",
                          doc.path, doc.span(path + (kind,)),
                          did_you_mean(case[kind], pool))
                continue
            span = doc.span(path)
            cases.append({**case, "_kind": kind, "_file": doc.path,
                          "_line": span.line if span else 0})
    return cases
