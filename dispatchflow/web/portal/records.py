"""Pages of records for signed-in users: "my records", a record and the forms bound to it.

- ``GET  /records/<entity>``: what the viewer's row filter lets them read, newest
  change first, each with the actions and forms it offers them now
  (``?form=<name>``: only the records that form can be filled in on);
- ``GET  /records/<entity>/<id>``: the record, its values formatted for people, and
  what the viewer can do with it (a technician with a pending offer sees the offer);
- ``GET|POST /records/<entity>/<id>/forms/<form>``: a form bound to the record, its
  values preselected: a flow action's form takes that action
  (:func:`~..platform.runner.take_action`), an ``acts_on: existing`` form updates
  the record (records service, with the version read when the form was opened);
- ``POST /records/<entity>/<id>/actions/<action>``: a flow action without a form.

Access is the platform's: the records service (row filters, field masks) and
``take_action`` decide; these pages only choose what to show.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ...errors import (
    ConflictError,
    DispatchflowError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from ...forms.binding import FormUse, action_label, form_use
from ...forms.render import render_form
from ...forms.validation import validate_payload
from ...platform import defaults
from ...platform.dispatch import explain
from ...platform.records.actors import Actor
from ...platform.runtime.runner import take_action
from ..auth.views import login_required, runtime, session_actor
from ..errors import error_page
from ..i18n import label, locale, t
from .pages import (
    display,
    entity_words,
    form_choices,
    form_presets,
    may_use_form,
    record_offer,
    record_rows,
    record_title,
    summary_fields,
)
from .submissions import parse_post

bp = Blueprint("records", __name__, url_prefix="/records")


def _actor() -> Actor:
    actor = session_actor()
    assert actor is not None  # login_required ran first
    return actor


def _entity_or_404(entity: str) -> Any:
    edef = runtime().app.entities.get(entity)
    if edef is None:
        abort(404)
    return edef


def list_title(entity: str) -> str:
    """"My <entity>" in the request's language."""
    return t("my_records", entity=entity_words(runtime().app.entities[entity]))


@bp.get("/<entity>")
@login_required
def record_list(entity: str) -> Any:
    """The viewer's records of ``entity`` with what each offers them now."""
    rt = runtime()
    rt.refresh()
    actor = _actor()
    edef = _entity_or_404(entity)
    rt.authz.require(actor, entity, "read")
    only = request.args.get("form")
    use = form_use(rt.app, only) if only else None
    if only and (use is None or not use.bound or use.entity != entity):
        abort(404)
    page = rt.records.list(actor, entity, sort="-updated_at", limit=defaults.PORTAL_LIST_SIZE,
                           cursor=request.args.get("cursor") or None)
    disp = display(actor)
    readable = rt.authz.readable_fields(actor, entity)
    shown = summary_fields(edef, readable)
    rows = []
    for record in page.items:
        offer = record_offer(rt, actor, entity, record)
        if only and only not in [f["form"] for f in offer.forms]:
            continue
        rows.append({"id": record["id"], "offer": offer,
                     "url": url_for("records.record_page", entity=entity,
                                    record_id=record["id"]),
                     "title": record_title(disp, edef, record),
                     "summary": [(disp.field_label(edef, n), disp.value(edef, n, record.get(n)))
                                 for n in shown if record.get(n) not in (None, "", [])],
                     "updated": disp.datetime(record["updated_at"])})
    choose_for = t("choose_record", form=label(rt.app.forms[only].data.get("title"), only)) \
        if only else None
    next_url = url_for("records.record_list", entity=entity, cursor=page.next_cursor,
                       form=only or None) if page.next_cursor else None
    return render_template("portal/records.html", heading=list_title(entity), rows=rows,
                           entity=entity, choose_for=choose_for, next_url=next_url,
                           notice=_notice(entity))


@bp.get("/<entity>/<int:record_id>")
@login_required
def record_page(entity: str, record_id: int) -> Any:
    """One record as the viewer may see it, and what they can do with it now."""
    rt = runtime()
    rt.refresh()
    actor = _actor()
    edef = _entity_or_404(entity)
    disp = display(actor)
    try:
        record = rt.records.get(actor, entity, record_id)
    except NotFoundError:
        # A technician offered the order cannot read it yet, but may answer the offer.
        actions = explain.available_actions(rt, actor, entity, record_id)
        record = {"id": record_id}
        offer = record_offer(rt, actor, entity, record) if actions else None
        if not offer:
            raise
    else:
        offer = record_offer(rt, actor, entity, record)
    rows = record_rows(disp, edef, record, rt.authz.readable_fields(actor, entity)
                       - {"created_by"})
    return render_template("portal/record.html", heading=record_title(disp, edef, record),
                           rows=rows,
                           offer=offer, entity=entity, record_id=record_id,
                           notice=_notice(entity), list_url=url_for("records.record_list",
                                                                    entity=entity),
                           list_title=list_title(entity))


def _notice(entity: str) -> str | None:
    """The confirmation after a form or an action (by name, never text from the URL)."""
    rt = runtime()
    done = request.args.get("done")
    if done and done in rt.app.forms:
        return label(rt.app.forms[done].data.get("success_message"), t("submitted"))
    did = request.args.get("did")
    if did:
        return t("action_done", action=label(action_label(rt.app, entity, did), did))
    return None


@bp.route("/<entity>/<int:record_id>/forms/<name>", methods=["GET", "POST"])
@login_required
def record_form(entity: str, record_id: int, name: str) -> Any:
    """A form bound to the record: preselected values; submitting takes its action or
    updates the record."""
    rt = runtime()
    rt.refresh()
    actor = _actor()
    edef = _entity_or_404(entity)
    use = form_use(rt.app, name)
    if use is None or not use.bound or use.entity != entity:
        abort(404)
    record = rt.records.get(actor, entity, record_id)  # 404 unless the viewer reads it
    record_url = url_for("records.record_page", entity=entity, record_id=record_id)
    _require_offered(actor, use, record, record_url)
    form = rt.app.forms[name]
    values: dict[str, Any] = dict(record)  # other fields feed the form's conditions
    errors: list[Any] = []
    status, discarded = 200, False
    version = request.args.get("v", type=int) or record.get("row_version")
    if request.method == "POST":
        posted = parse_post(rt, name, actor, mode="update")
        preset = form_presets(rt.app, form, actor)
        # An empty file input keeps the files the record has (it does not clear them).
        payload = {**{k: v for k, v in posted.payload.items() if k not in preset and not (
            v is None and edef.fields[k].kind == "attachment")}, **preset}
        checked = validate_payload(rt.app, entity, payload, mode="update", form=name,
                                   locale=locale(), now=rt.clock(), current=record)
        errors = [*posted.errors, *checked.errors]
        if not errors:
            try:
                if use.action is not None:
                    take_action(rt, actor, entity, record_id, use.action, payload,
                                flow=use.flow, locale=locale())
                else:
                    rt.records.update(actor, entity, record_id, payload,
                                      expected_version=version, locale=locale())
            except ValidationError as exc:
                errors = list(exc.errors) or [{"field": "", "message": exc.message}]
            except ConflictError:
                posted.discard(rt)
                return error_page(409, record_url=record_url)
            except BaseException:
                posted.discard(rt)
                raise
            else:
                return redirect(url_for("records.record_page", entity=entity,
                                        record_id=record_id, done=name), 303)
        discarded = posted.discard(rt)
        values = {**values, **posted.payload}
        status = 422
    action = url_for("records.record_form", entity=entity, record_id=record_id, name=name,
                     v=version)
    html = render_form(rt.app, name, locale=locale(), values=values, errors=errors,
                       csrf_token=generate_csrf(), action=action, now=rt.clock(),
                       choices=form_choices(rt, actor, name))
    return render_template("portal/form_page.html", form=form, form_html=Markup(html),
                           has_errors=bool(errors), files_discarded=discarded,
                           record_url=record_url,
                           record_heading=record_title(display(actor), edef, record)), status


def _require_offered(actor: Actor, use: FormUse, record: dict[str, Any],
                     record_url: str) -> None:
    """Raise unless the form is offered to ``actor`` on the record now: 403 when their role
    may never use it, 409 when the record's state does not offer it now."""
    rt = runtime()
    form = rt.app.forms[use.form]
    if use.action is not None:
        allowed = rt.authz.can(actor, use.entity, use.action)
    else:
        allowed = may_use_form(form, actor) is actor and rt.authz.can(actor, use.entity,
                                                                      "update")
    if not allowed:
        raise PermissionDenied(f"you may not use the form {use.form}")
    offer = record_offer(rt, actor, use.entity, record)
    if use.form not in [f["form"] for f in offer.forms]:
        raise _NotNow(record_url)


class _NotNow(ConflictError):
    """The form is not offered on the record in its current state."""

    def __init__(self, record_url: str) -> None:
        super().__init__("this form is not available on the record now",
                         hint="reopen the record to see what you can do now")
        self.record_url = record_url


@bp.errorhandler(_NotNow)
def _not_now(exc: _NotNow) -> Any:
    return error_page(409, record_url=exc.record_url)


@bp.post("/<entity>/<int:record_id>/actions/<action>")
@login_required
def record_action(entity: str, record_id: int, action: str) -> Any:
    """Take a flow action without a form (one with a form opens its form instead)."""
    rt = runtime()
    rt.refresh()
    actor = _actor()
    _entity_or_404(entity)
    options = {o["action"]: o for o in explain.available_actions(rt, actor, entity, record_id)}
    option = options.get(action)
    if option is not None and option.get("form"):
        return redirect(url_for("records.record_form", entity=entity, record_id=record_id,
                                name=option["form"]), 303)
    record_url = url_for("records.record_page", entity=entity, record_id=record_id)
    try:
        take_action(rt, actor, entity, record_id, action, None, locale=locale())
    except ConflictError:
        return error_page(409, record_url=record_url)
    try:
        rt.records.get(actor, entity, record_id)
    except DispatchflowError:  # e.g. a rejected offer: the order is no longer theirs
        return redirect(url_for("records.record_list", entity=entity, did=action), 303)
    return redirect(url_for("records.record_page", entity=entity, record_id=record_id,
                            did=action), 303)
