"""What the server-rendered pages share: who may use a form, what a record offers, how
its values read.

Everything here goes through the platform's services under the viewer's
authorization (records service, authorizer, :func:`~..platform.explain.available_actions`);
nothing field-service-specific: entities, forms, actions and labels come from the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import g

from ...dsl.model import EntityDef
from ...errors import DispatchflowError
from ...forms.binding import bound_forms, form_offered
from ...platform import defaults
from ...platform.assembly import Runtime
from ...platform.dispatch import explain
from ...platform.records.actors import SYSTEM_ACTOR, Actor
from ..auth.views import runtime, session_actor
from ..display import Display, Namer, viewer_zone
from ..i18n import label, locale

#: Who submits a ``public`` form for an anonymous visitor.
PORTAL_ACTOR = Actor("portal", "portal", channel="portal", is_system=True)


def display(actor: Actor | None = None) -> Display:
    """The formatter of this request: its language, the viewer's zone and reference names."""
    rt = runtime()
    viewer = actor if actor is not None else session_actor()
    return Display(rt.app, locale(), viewer_zone(rt.app, viewer.attributes if viewer else None),
                   reference_namer(rt, viewer))


def reference_namer(rt: Runtime, viewer: Actor | None) -> Namer:
    """``names(entity, id)``: a referenced record's display name (its ``title_field``).

    The name is shown when the viewer may read that record's title field, or
    when neither the target entity nor its title field is marked ``sensitive``
    (a customer sees the name of the technician on their order, not the
    technician's profile). Names are looked up once per request.
    """
    cache: dict[tuple[str, int], str | None] = g.setdefault("df_names", {})

    def names(entity: str, record_id: int) -> str | None:
        key = (entity, record_id)
        if key not in cache:
            cache[key] = _name_of(rt, viewer, entity, record_id)
        return cache[key]
    return names


def _name_of(rt: Runtime, viewer: Actor | None, entity: str, record_id: int) -> str | None:
    edef = rt.app.entities.get(entity)
    if edef is None or not edef.title_field:
        return None
    title = edef.title_field
    if viewer is not None:
        try:
            record = rt.records.get(viewer, entity, record_id)
        except DispatchflowError:
            record = None
        if record is not None and record.get(title) not in (None, ""):
            return str(record[title])
    if edef.sensitive or edef.fields[title].sensitive:
        return None
    try:
        value = rt.records.get(SYSTEM_ACTOR, entity, record_id).get(title)
    except DispatchflowError:
        return None
    return str(value) if value not in (None, "") else None


def may_use_form(form: Any, actor: Actor | None) -> Actor | None:
    """The actor submitting ``form`` for this visitor, or None when they may not use it.

    A form lists the roles that may use it (none listed: any signed-in user);
    ``public`` lets anonymous visitors use it, as :data:`PORTAL_ACTOR`.
    """
    roles = form.data.get("roles") or []
    if actor is not None and (not roles or set(actor.roles) & set(roles) or actor.is_system):
        return actor
    if "public" in roles:
        return PORTAL_ACTOR
    return None


def main_entities(rt: Runtime) -> list[str]:
    """The entities people work on: those with a flow (else those with a form), in order."""
    flows = [item.data["entity"] for item in rt.app.flows.values()]
    named = flows or [item.data["entity"] for item in rt.app.forms.values()]
    return [e for e in dict.fromkeys(named) if e in rt.app.entities]


@dataclass
class Offer:
    """What a viewer can do with one record now."""

    actions: list[dict[str, Any]] = field(default_factory=list)  # formless: buttons
    forms: list[dict[str, Any]] = field(default_factory=list)  # {form, label, action?}

    def __bool__(self) -> bool:
        return bool(self.actions or self.forms)


def record_offer(rt: Runtime, actor: Actor, entity: str, record: dict[str, Any]) -> Offer:
    """The flow actions ``actor`` may take on the record and the forms it may fill in."""
    disp_label = Display(rt.app, locale(), viewer_zone(rt.app)).label
    offer = Offer()
    try:
        actions = explain.available_actions(rt, actor, entity, int(record["id"]))
    except DispatchflowError:
        actions = []
    for option in actions:
        label = disp_label(option.get("label"), option["action"])
        if option.get("form") and option["form"] in rt.app.forms:
            form = rt.app.forms[option["form"]]
            offer.forms.append({"form": option["form"], "action": option["action"],
                                "label": disp_label(form.data.get("title"), label)})
        else:
            offer.actions.append({"action": option["action"], "label": label})
    if rt.authz.can(actor, entity, "update"):
        now = rt.clock()
        for use in bound_forms(rt.app, entity):
            form = rt.app.forms[use.form]
            if use.action is None and may_use_form(form, actor) is actor and \
                    form_offered(rt.app, use.form, _facts(rt.app.entities[entity], record), now):
                offer.forms.append({"form": use.form, "action": None,
                                    "label": disp_label(form.data.get("title"), use.form)})
    return offer


def _facts(entity: EntityDef, record: dict[str, Any]) -> dict[str, Any]:
    """The record as expressions read it (references as ``{"id": ...}``)."""
    out = dict(record)
    for name, f in entity.fields.items():
        if f.kind == "reference" and isinstance(out.get(name), int):
            out[name] = {"id": out[name]}
    return out


def entity_words(entity: EntityDef) -> str:
    """An entity's label as it reads inside a sentence (English starts it lower-case:
    "My work order list")."""
    name = label(entity.label, entity.name)
    return name[:1].lower() + name[1:] if locale() == "en" and name[1:2].islower() else name


def record_title(disp: Display, entity: EntityDef, record: dict[str, Any]) -> str:
    """``<entity label> #id · <title>``."""
    head = f"{disp.label(entity.label, entity.name)} #{record.get('id')}"
    title = record.get(entity.title_field) if entity.title_field else None
    return f"{head} · {title}" if title else head


def summary_fields(entity: EntityDef, readable: frozenset[str]) -> list[str]:
    """Fields a list row shows: the entity's enum fields that are indexed, then its
    indexed references (status, priority, assignee...), as far as the viewer reads them."""
    enums = [n for n, f in entity.fields.items() if f.kind == "enum" and f.index and not f.system]
    refs = [n for n, f in entity.fields.items() if f.kind == "reference" and f.index]
    return [n for n in enums + refs if n in readable and n != entity.title_field]


def record_rows(disp: Display, entity: EntityDef, record: dict[str, Any],
                readable: frozenset[str]) -> list[tuple[str, str]]:
    """(label, formatted value) of every readable field with a value: the list's summary
    fields (status, priority...) first, then the others as declared, system fields last."""
    first = summary_fields(entity, readable)
    rest = [n for n, f in entity.fields.items() if n not in first and not f.system]
    system = [n for n, f in entity.fields.items() if f.system]
    rows = []
    for name in dict.fromkeys([entity.title_field or "", *first, *rest, *system]):
        if name in ("", "id") or name not in readable or name not in record:
            continue
        text = disp.value(entity, name, record.get(name))
        if text:
            rows.append((disp.field_label(entity, name), text))
    return rows


def form_presets(app: Any, form: Any, actor: Actor) -> dict[str, Any]:
    """Values of a form's hidden fields, set by the platform rather than the browser.

    A hidden field with a ``default`` gets that default (the form author's
    value); a hidden reference field gets the signed-in user's attribute that
    references the same entity (a customer's ``customer``). Whatever the
    browser sent for hidden fields is ignored.
    """
    entity = app.entities[form.data["entity"]]
    out: dict[str, Any] = {}
    for section in form.data["sections"]:
        for item in section["fields"]:
            f = entity.fields.get(item["field"])
            if item.get("widget") != "hidden" or f is None:
                continue
            if "default" in item:
                out[f.name] = item["default"]
            if f.kind == "reference":
                for name, uf in app.user.fields.items():
                    value = actor.attributes.get(name)
                    if uf.kind == "reference" and uf.reference == f.reference and \
                            value is not None:
                        out[f.name] = value.get("id") if isinstance(value, dict) else value
    return out


def form_choices(rt: Runtime, actor: Actor, form_name: str) -> dict[str, list[tuple[Any, str]]]:
    """Options of the form's reference fields: the records of the target entity the actor
    may read (at most :data:`~..platform.defaults.FORM_CHOICES`), by display name.

    A reference the actor may not list stays a plain input for the record number.
    """
    form = rt.app.forms[form_name]
    entity = rt.app.entities[form.data["entity"]]
    out: dict[str, list[tuple[Any, str]]] = {}
    for section in form.data["sections"]:
        for item in section["fields"]:
            f = entity.fields.get(item["field"])
            if f is None or f.kind != "reference" or item.get("widget") == "hidden" or \
                    not f.reference or not rt.authz.can(actor, f.reference, "read"):
                continue
            target = rt.app.entities[f.reference]
            try:
                page = rt.records.list(actor, f.reference, limit=defaults.FORM_CHOICES)
            except DispatchflowError:
                continue
            title = target.title_field
            out[f.name] = [(r["id"], f"{r.get(title)} (#{r['id']})" if title and r.get(title)
                            else f"#{r['id']}") for r in page.items]
    return out
