"""Portal pages: the generated forms, the submitter's confirmation and tracking link.

A form lists the roles that may use it; ``public`` means anyone (a customer
repair request). A public submission is stored by the portal's own actor, but
only through that form: the form's fields are the only writable ones, so a
crafted request cannot set anything else.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from markupsafe import Markup

from ..errors import ValidationError
from ..forms.render import render_form
from ..forms.submission import parse_form_submission
from ..forms.validation import validate_payload
from ..platform import defaults
from ..platform.actors import Actor
from ..platform.files import store_file
from .auth import runtime, session_actor
from .i18n import label, locale, t

bp = Blueprint("portal", __name__)

PORTAL_ACTOR = Actor("portal", "portal", channel="portal", is_system=True)


def _tracker() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.secret_key, salt="dispatchflow-track")


def tracking_token(entity: str, record_id: int) -> str:
    """A signed, expiring token naming one record (for customers without accounts)."""
    return _tracker().dumps([entity, record_id])


def _form_or_404(name: str) -> Any:
    form = runtime().app.forms.get(name)
    if form is None:
        abort(404)
    return form


def _may_use(form: Any) -> Actor | None:
    """The actor submitting this form, or None when the visitor may not use it."""
    roles = form.data.get("roles") or []
    actor = session_actor()
    if actor is not None and (not roles or set(actor.roles) & set(roles) or actor.is_system):
        return actor
    if "public" in roles:
        return PORTAL_ACTOR
    return None


@bp.get("/")
def index() -> Any:
    rt = runtime()
    rt.refresh()
    forms = [(name, form) for name, form in rt.app.forms.items() if _may_use(form)]
    return render_template("index.html", forms=forms,
                           app_title=label(rt.app.title, rt.app.name))


@bp.route("/forms/<name>", methods=["GET", "POST"])
def form_page(name: str) -> Any:
    rt = runtime()
    rt.refresh()
    form = _form_or_404(name)
    actor = _may_use(form)
    if actor is None:
        if session_actor() is None:
            return redirect(url_for("auth.login", next=request.path))
        abort(403)
    values: dict[str, Any] = {}
    errors: list[Any] = []
    status = 200
    if request.method == "POST":
        max_bytes = int(rt.settings.max_upload_mb * 1024 * 1024)

        def keep(_field: str, upload: Any) -> str:
            return store_file(rt.engine, upload.read(), filename=upload.filename or "upload",
                              content_type=upload.content_type or "application/octet-stream",
                              created_by=actor.user_id, max_bytes=max_bytes).id

        def keep_data_url(_field: str, data: bytes, content_type: str) -> str:
            return store_file(rt.engine, data, filename="signature.png",
                              content_type=content_type, created_by=actor.user_id,
                              max_bytes=max_bytes).id

        payload, errors = parse_form_submission(
            rt.app, name, {k: request.form.getlist(k) for k in request.form},
            {k: request.files.getlist(k) for k in request.files}, store_file=keep,
            store_data_url=keep_data_url, default_max_mb=rt.settings.max_upload_mb,
            locale=locale())
        preset = _presets(rt.app, form, actor)
        payload = {k: v for k, v in payload.items() if k not in preset}
        values = {**payload, **preset}
        if errors:
            # An upload failed: write nothing, but show every other problem too.
            checked = validate_payload(rt.app, form.data["entity"], values, mode="create",
                                       form=name, locale=locale())
            errors = [*errors, *checked.errors]
        else:
            try:
                record = rt.records.create(actor, form.data["entity"], payload, form=name,
                                           locale=locale(), preset=preset)
            except ValidationError as exc:
                errors = exc.errors
            else:
                token = tracking_token(form.data["entity"], record["id"])
                return redirect(url_for("portal.done", name=name, t=token))
        status = 422
    html = render_form(rt.app, name, locale=locale(), values=values, errors=errors,
                       csrf_token=generate_csrf(), action=url_for("portal.form_page", name=name))
    return render_template("form_page.html", form=form, form_html=Markup(html),
                           has_errors=bool(errors)), status


@bp.get("/forms/<name>/done")
def done(name: str) -> Any:
    form = _form_or_404(name)
    token = request.args.get("t", "")
    try:
        entity, record_id = _tracker().loads(token, max_age=defaults.TRACKING_LINK_DAYS * 86400)
    except (BadSignature, SignatureExpired):
        abort(404)
    message = label(form.data.get("success_message"), t("submitted"))
    return render_template("done.html", message=message, record_id=record_id, entity=entity,
                           track_url=url_for("portal.track", token=token, _external=True))


@bp.get("/track/<token>")
def track(token: str) -> Any:
    rt = runtime()
    rt.refresh()
    try:
        entity, record_id = _tracker().loads(token, max_age=defaults.TRACKING_LINK_DAYS * 86400)
    except (BadSignature, SignatureExpired):
        return render_template("error.html", message=t("link_expired")), 404
    record = rt.records.get(PORTAL_ACTOR, entity, int(record_id))
    # Show what the bundle lets customers read (role "customer"), nothing more.
    viewer = Actor("tracking", roles=("customer",), channel="portal")
    visible = rt.authz.readable_fields(viewer, entity) if "customer" in (
        rt.app.roles.data.get("roles", {}) if rt.app.roles else {}) else frozenset({"id"})
    edef = rt.app.entities[entity]
    rows = [(label(edef.fields[k].label, k), _display(edef, k, v)) for k, v in record.items()
            if k in visible and k in edef.fields and v not in (None, [], "")
            and edef.fields[k].kind not in ("attachment", "geo", "reference")]
    return render_template("track.html", rows=rows, record_id=record_id,
                           title=label(edef.label, entity))


def _presets(app: Any, form: Any, actor: Actor) -> dict[str, Any]:
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


def _display(entity: Any, name: str, value: Any) -> str:
    f = entity.fields[name]
    if f.kind == "enum":
        for option in f.enum_values:
            if option.value == value:
                return label(option.label, str(value))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
