"""Portal pages: the home page, the forms that create records, the confirmation and tracking.

A form lists the roles that may use it; ``public`` means anyone (a customer
repair request). A public submission is stored by the portal's own actor, but
only through that form: the form's fields are the only writable ones, so a
crafted request cannot set anything else.

Forms that act on an existing record (:mod:`~..forms.binding`) are not
offered here: ``/forms/<name>`` sends the visitor to the records the form can
be filled in on (:mod:`.record_pages`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ...errors import ValidationError
from ...forms.binding import create_forms, form_use
from ...forms.render import render_form
from ...forms.validation import validate_payload
from ...platform.dispatch import explain
from ...platform.records.actors import Actor
from ..auth.views import runtime, session_actor
from ..display import Display
from ..errors import error_page
from ..i18n import label, locale, t
from ..tracking import read_tracking_token, tracked_record, tracking_token
from .pages import (
    PORTAL_ACTOR,
    display,
    entity_words,
    form_choices,
    form_presets,
    main_entities,
    may_use_form,
    record_offer,
    record_rows,
    record_title,
)
from .submissions import parse_post

bp = Blueprint("portal", __name__)


def _form_or_404(name: str) -> Any:
    form = runtime().app.forms.get(name)
    if form is None:
        abort(404)
    return form


@bp.get("/")
def index() -> Any:
    """Home: a signed-in user's records and offers, the forms the visitor may use."""
    rt = runtime()
    rt.refresh()
    actor = session_actor()
    forms = [(name, rt.app.forms[name]) for name in create_forms(rt.app)
             if may_use_form(rt.app.forms[name], actor)]
    lists = []
    offers: list[dict[str, Any]] = []
    if actor is not None:
        disp = display(actor)
        for entity in main_entities(rt):
            if rt.authz.can(actor, entity, "read"):
                name = entity_words(rt.app.entities[entity])
                lists.append({"url": url_for("records.record_list", entity=entity),
                              "title": t("my_records", entity=name),
                              "help": t("my_records_help", entity=name)})
        offers = _offers(actor, disp)
    return render_template("portal/index.html", forms=forms, lists=lists, offers=offers,
                           app_title=label(rt.app.title, rt.app.name))


def _offers(actor: Actor, disp: Display) -> list[dict[str, Any]]:
    """Pending offers made to the actor (a technician's orders to accept or reject)."""
    rt = runtime()
    out = []
    for offer in explain.offers_for(rt, actor):
        entity = rt.app.entities.get(offer["entity"])
        if entity is None:
            continue
        out.append({"url": url_for("records.record_page", entity=offer["entity"],
                                   record_id=offer["record_id"]),
                    "title": f"{disp.label(entity.label, entity.name)} #{offer['record_id']}",
                    "expires": disp.datetime(offer["expires_at"]) if offer["expires_at"]
                    else ""})
    return out


@bp.route("/forms/<name>", methods=["GET", "POST"])
def form_page(name: str) -> Any:
    """A form that creates a record (one that acts on a record sends you to its records)."""
    rt = runtime()
    rt.refresh()
    form = _form_or_404(name)
    use = form_use(rt.app, name)
    if use is not None and use.bound:
        if session_actor() is None:
            return redirect(url_for("auth.login", next=request.path))
        return redirect(url_for("records.record_list", entity=use.entity, form=name), 303)
    actor = may_use_form(form, session_actor())
    if actor is None:
        if session_actor() is None:
            return redirect(url_for("auth.login", next=request.path))
        abort(403)
    values: dict[str, Any] = {}
    errors: list[Any] = []
    status = 200
    discarded = False
    if request.method == "POST":
        posted = parse_post(rt, name, actor, mode="create")
        preset = form_presets(rt.app, form, actor)
        posted.payload = {k: v for k, v in posted.payload.items() if k not in preset}
        errors = posted.errors
        if errors:
            # An upload failed: write nothing, but show every other problem too.
            checked = validate_payload(rt.app, form.data["entity"],
                                       {**posted.payload, **preset}, mode="create", form=name,
                                       locale=locale())
            errors = [*errors, *checked.errors]
        else:
            try:
                record = rt.records.create(actor, form.data["entity"], posted.payload,
                                           form=name, locale=locale(), preset=preset)
            except ValidationError as exc:
                errors = exc.errors
            except BaseException:
                posted.discard(rt)
                raise
            else:
                token = tracking_token(form.data["entity"], record["id"])
                return redirect(url_for("portal.done", name=name, t=token))
        discarded = posted.discard(rt)
        values = {**posted.payload, **preset}
        status = 422
    html = render_form(rt.app, name, locale=locale(), values=values, errors=errors,
                       csrf_token=generate_csrf(), action=url_for("portal.form_page", name=name),
                       now=rt.clock(), choices=form_choices(rt, actor, name))
    return render_template("portal/form_page.html", form=form, form_html=Markup(html),
                           has_errors=bool(errors), files_discarded=discarded), status


@bp.get("/forms/<name>/done")
def done(name: str) -> Any:
    """The confirmation after a create form: the record's number and tracking link."""
    form = _form_or_404(name)
    token = request.args.get("t", "")
    named = read_tracking_token(token)
    if named is None:
        abort(404)
    entity, record_id = named
    message = label(form.data.get("success_message"), t("submitted"))
    record_url = list_url = list_title = None
    actor = session_actor()
    if actor is not None and runtime().authz.can(actor, entity, "read"):
        record_url = url_for("records.record_page", entity=entity, record_id=record_id)
        list_url = url_for("records.record_list", entity=entity)
        list_title = t("my_records", entity=entity_words(runtime().app.entities[entity]))
    return render_template("portal/done.html", message=message, record_id=record_id, entity=entity,
                           track_url=url_for("portal.track", token=token, _external=True),
                           record_url=record_url, list_url=list_url, list_title=list_title)


@bp.get("/track/<token>")
def track(token: str) -> Any:
    """A customer's tracking page: what role ``customer`` may read of the record.

    The link ends once the record's flow has ended and the bundle's grace
    period passed (:mod:`~..tracking`): then 410 with a friendly page.
    The forms the customer may fill in on the record are linked (they need a login).
    With JavaScript the status part follows the record live: it is re-fetched from
    :func:`track_status` whenever ``GET /live?track=<token>`` reports a change.
    """
    shown = _tracked(token)
    if not isinstance(shown, dict):
        return shown
    return render_template("portal/track.html", **shown,
                           status_url=url_for("portal.track_status", token=token),
                           live_url=url_for("live.live", track=token))


@bp.get("/track/<token>/status")
def track_status(token: str) -> Any:
    """The status part of a tracking page (an HTML fragment), under the same token rules."""
    shown = _tracked(token)
    if not isinstance(shown, dict):
        return shown
    return render_template("portal/track_status.html", **shown)


def _tracked(token: str) -> dict[str, Any] | tuple[str, int]:
    """What a tracking page shows of the record its token names, or the error page."""
    rt = runtime()
    rt.refresh()
    named = tracked_record(rt, token)
    if isinstance(named, int):
        return error_page(named, t("link_ended" if named == 410 else "link_expired"))
    entity, record_id = named
    record = rt.records.get(PORTAL_ACTOR, entity, record_id)
    # Show what the bundle lets customers read (role "customer"), nothing more.
    viewer = Actor("tracking", roles=("customer",), channel="portal")
    known = rt.app.roles.data.get("roles", {}) if rt.app.roles else {}
    visible = rt.authz.readable_fields(viewer, entity) if "customer" in known \
        else frozenset({"id"})
    edef = rt.app.entities[entity]
    disp = display(viewer)
    rows = record_rows(disp, edef, record, frozenset(
        n for n in visible if n not in ("id", "created_by") and _shown(rt, edef.fields[n])))
    forms = []
    if "customer" in known:
        offer = record_offer(rt, viewer, entity, record)
        forms = [{"url": url_for("records.record_form", entity=entity, record_id=record_id,
                                 name=f["form"]), "label": f["label"]} for f in offer.forms]
    return {"rows": rows, "record_id": record_id, "forms": forms,
            "heading": record_title(disp, edef, record)}


def _shown(rt: Any, f: Any) -> bool:
    """Fields a tracking page lists: no files or map points, no references whose target
    is sensitive (a customer record's name is not for whoever holds the link)."""
    if f.kind in ("attachment", "geo"):
        return False
    target = rt.app.entities.get(f.reference) if f.kind == "reference" else None
    return target is None or not target.sensitive
