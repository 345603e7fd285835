"""Forms -> accessible, mobile-first HTML (Jinja2), plus the static assets they use.

:func:`render_form` returns one ``<form>`` element; the web layer puts it in
its page layout and includes the assets once per page (:func:`asset_tags`)::

    <link rel="stylesheet" href="{prefix}/dispatchflow-forms.css">
    <script src="{prefix}/dispatchflow-forms.js" defer></script>

The assets live in :data:`STATIC_DIR` (serve that folder, e.g. as a Flask
blueprint's ``static_folder``). Nothing is inline: no ``<script>``, no
``style=`` and no event-handler attributes, so a strict Content-Security-Policy
(``script-src 'self'``) works. Without JavaScript the form still works: fields
start visible or hidden as the server evaluated their conditions, geo points
are typed in and the server re-evaluates everything on submission.

Each input has a ``<label for>`` (groups — radio, geo, signature, checkbox
lists — a ``<fieldset>`` with a ``<legend>``); help text (``<id>-help``) and
the error (``class="field-error"``, ``id="<field>-error"``) sit next to the
input and are linked with ``aria-describedby``; invalid inputs carry
``aria-invalid="true"``; an error summary with links opens the form. Input ids
are the field names (geo parts ``<field>_lat`` / ``<field>_lng``, the signature
canvas ``<field>-pad``). Widgets are looked up in :data:`WIDGETS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from ..dsl.compiler import App
from ..dsl.model import FieldDef
from ..dsl.wording import duration_text
from .conditions import client_fields, form_conditions, holds
from .messages import field_message, label_text, normalize_locale, ui_text
from .schema import DURATION_PATTERN, FormField, FormLayout, form_layout
from .validation import runtime_value

#: Folder of the files :func:`asset_tags` links to.
STATIC_DIR = Path(str(resources.files(__package__).joinpath("static")))

#: The static files a page with forms includes (names inside :data:`STATIC_DIR`).
SCRIPT_FILE = "dispatchflow-forms.js"
STYLE_FILE = "dispatchflow-forms.css"
STATIC_FILES = (SCRIPT_FILE, STYLE_FILE)


@dataclass(frozen=True)
class Widget:
    """How a widget is drawn: a macro of ``templates/widgets.html``."""

    macro: str
    input_type: str | None = None  # for the plain <input> macro


#: Widget name -> how it is drawn. Forms name these in ``widget:``.
WIDGETS: dict[str, Widget] = {
    "text": Widget("input", "text"),
    "textarea": Widget("textarea"),
    "number": Widget("input", "number"),
    "select": Widget("select"),
    "radio": Widget("radio"),
    "checkbox": Widget("checkbox"),
    "date": Widget("input", "date"),
    "datetime": Widget("input", "datetime-local"),
    "duration": Widget("input", "text"),
    "geo": Widget("geo"),
    "photo": Widget("file"),
    "file": Widget("file"),
    "signature": Widget("signature"),
    "tags": Widget("input", "text"),
    "hidden": Widget("hidden"),
}

Choices = Mapping[str, Sequence[tuple[Any, str]]]


@dataclass
class FieldView:
    """Everything the templates need for one input (built here, not in the template)."""

    name: str
    widget: str
    macro: str
    kind: str
    label: str
    help: str = ""
    hint: str = ""
    errors: list[str] = field(default_factory=list)
    required: bool = False
    hidden: bool = False
    wrapper: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    value: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def focus_id(self) -> str:
        return str(self.extra.get("focus_id", self.name))


_ATTR_NAME = re.compile(r"[a-z][a-z0-9-]*")


def html_attrs(attrs: Mapping[str, Any]) -> Markup:
    """`` name="value"`` pairs, escaped; True gives a bare boolean attribute, False/None none."""
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        if not _ATTR_NAME.fullmatch(name):
            raise ValueError(f"not an HTML attribute name: {name!r}")
        out.append(f" {name}" if value is True else f' {name}="{escape(str(value))}"')
    return Markup("".join(out))


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("dispatchflow.forms", "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["attrs"] = html_attrs
    return env


def asset_tags(prefix: str) -> str:
    """The ``<link>`` and ``<script>`` tags for the assets served under URL ``prefix``."""
    base = prefix.rstrip("/")
    env = _environment()
    return env.from_string(
        '<link rel="stylesheet" href="{{ base }}/{{ css }}">\n'
        '<script src="{{ base }}/{{ js }}" defer></script>').render(
            base=base, css=STYLE_FILE, js=SCRIPT_FILE)


def render_form(app: App, form_name: str, *, locale: str | None, csrf_token: str, action: str,
                values: Mapping[str, Any] | None = None, errors: Sequence[Any] | None = None,
                lang_switch_url: str | None = None, choices: Choices | None = None,
                now: datetime | None = None) -> str:
    """The HTML ``<form>`` of ``form_name`` (a fragment; the page layout is the caller's).

    ``values`` are the current values by field: a payload as submitted (JSON
    shape, e.g. from :func:`~dispatchflow.forms.submission.parse_form_submission`)
    or a stored record (runtime values); absent fields show the form's or the
    field's default. ``errors`` are :class:`~dispatchflow.forms.validation.FieldError`
    s (or dicts with ``field``, ``message``); an error whose field is not an
    input of the form (``""``, ``location.lat`` goes to ``location``) appears in
    the summary. ``choices`` gives the options of reference selects and
    checkbox lists: ``{field: [(value, label), ...]}`` (a reference without
    choices is a number input for the record id). ``lang_switch_url`` adds a
    link to the other language. ``now`` is the time conditions see when the
    server decides what starts hidden (default: now, UTC).

    Raises UnknownNameError for an unknown form.
    """
    layout = form_layout(app, form_name)
    loc = normalize_locale(locale, app.default_locale)
    ctx = _Render(app, layout, loc, dict(values or {}), choices or {})
    by_field, summary = ctx.group_errors(errors or [])
    record = ctx.record()
    conds = form_conditions(app, form_name)
    at = now or datetime.now(UTC)
    sections = []
    every: list[FieldView] = []
    context: dict[str, Any] = {}
    for section in layout.sections:
        views = []
        for ff in section.fields:
            fc = conds.get(ff.name)
            view = ctx.view(ff, by_field.get(ff.name, []))
            view.hidden = fc is not None and holds(fc.visible, record, at) is False
            required_if = fc is not None and holds(fc.required, record, at) is True
            ctx.finish(view, ff, (ff.always_required or required_if) and not view.hidden
                       and not ff.readonly)
            if fc is not None and view.widget != "hidden":
                if fc.visible_client is not None:
                    view.wrapper["data-df-visible-if"] = _json(fc.visible_client)
                if fc.required is not None and not ff.readonly and not (
                        view.widget == "checkbox" and ff.field.kind == "boolean"):
                    view.wrapper["data-df-required-server"] = "true" if required_if else "false"
                    if fc.required_client is not None:
                        view.wrapper["data-df-required-if"] = _json(fc.required_client)
                for name in client_fields(fc.visible_client) | client_fields(fc.required_client):
                    if name not in layout.fields and name in layout.entity.fields:
                        context[name] = ctx.client_value(layout.entity.fields[name],
                                                         ctx.value_of(name))
            views.append(view)
        every.extend(views)
        sections.append({"title": label_text(section.title, loc, "", app.default_locale),
                         "description": label_text(section.description, loc, "",
                                                   app.default_locale),
                         "fields": views})
    summary_items = [{"href": "#" + v.focus_id, "message": m}
                     for v in every for m in v.errors] + \
        [{"href": None, "message": m} for m in summary]
    other = "en" if loc == "zh" else "zh"
    return _environment().get_template("form.html").render(
        form_name=layout.name, action=action, csrf_token=csrf_token, lang=loc,
        sections=sections, summary=summary_items, context_json=_json(context),
        submit=label_text(layout.submit_label, loc, ui_text("submit", loc), app.default_locale),
        required_note=ui_text("required_note", loc),
        summary_title=ui_text("error_summary", loc),
        lang_switch_url=lang_switch_url, other_lang=other,
        other_lang_name="English" if other == "en" else "中文").strip()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class _Render:
    """Per-call state: the layout, locale, values and how to show them."""

    def __init__(self, app: App, layout: FormLayout, locale: str, values: dict[str, Any],
                 choices: Choices) -> None:
        self.app, self.layout, self.locale, self.values, self.choices = \
            app, layout, locale, values, choices
        self.tz = ZoneInfo(app.timezone)

    def text(self, label: Mapping[str, str], fallback: str = "") -> str:
        return label_text(label, self.locale, fallback, self.app.default_locale)

    def value_of(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        ff = self.layout.fields.get(name)
        if ff is not None:
            return ff.default
        f = self.layout.entity.fields.get(name)
        return f.default if f is not None else None

    def record(self) -> dict[str, Any]:
        """A best-effort runtime record for the server-side first evaluation of conditions."""
        rec: dict[str, Any] = {"tags": []}
        for f in self.layout.entity.fields.values():
            raw = self.value_of(f.name)
            if isinstance(raw, dict) and f.kind == "reference":
                rec[f.name] = raw
                continue
            try:
                value = raw if _is_runtime(f, raw) else runtime_value(f, raw, self.app.timezone)
            except Exception:  # noqa: BLE001 - shown values may be anything a user typed
                value = None
            if f.kind == "reference" and isinstance(value, int):
                value = {"id": value}
            rec[f.name] = value
        return rec

    def group_errors(self, errors: Sequence[Any]) -> tuple[dict[str, list[str]], list[str]]:
        by_field: dict[str, list[str]] = {}
        summary: list[str] = []
        for err in errors:
            path = str(getattr(err, "field", None) if not isinstance(err, Mapping)
                       else err.get("field", "") or "")
            message = str(getattr(err, "message", None) if not isinstance(err, Mapping)
                          else err.get("message", "") or "")
            top = path.split(".", 1)[0]
            ff = self.layout.fields.get(top)
            if ff is not None and ff.widget != "hidden":
                by_field.setdefault(top, []).append(message)
            else:
                summary.append(message)
        return by_field, summary

    # -- one field
    def view(self, ff: FormField, errors: list[str]) -> FieldView:
        f = ff.field
        widget = ff.widget if ff.widget in WIDGETS else "text"
        if widget == "select" and f.kind == "reference" and ff.name not in self.choices:
            widget = "number"
        if widget == "checkbox" and f.kind == "list" and ff.name not in self.choices:
            widget = "tags"
        view = FieldView(name=ff.name, widget=widget, macro=WIDGETS[widget].macro, kind=f.kind,
                         label=self.text(ff.label, ff.name), help=self.text(ff.help),
                         errors=errors)
        raw = self.value_of(ff.name)
        view.value = self.form_value(f, raw)
        view.wrapper = {"class": f"df-field df-widget-{widget}"
                                 + (" df-invalid" if errors else ""),
                        "id": f"{ff.name}-field", "data-df-field": ff.name,
                        "data-df-kind": f.kind, "data-df-widget": widget,
                        "data-df-msg-required": field_message(
                            "required", self.locale, label=view.label)}
        if widget in ("radio", "select") or (widget == "checkbox" and f.kind == "list"):
            view.options = self.options(ff, widget, raw)
        if widget == "select":
            view.extra["choose"] = ui_text("choose", self.locale)
        if f.kind == "attachment":
            view.kept = [str(i) for i in (raw if isinstance(raw, list) else [raw])
                         if isinstance(i, str) and i and not i.startswith("data:")]
        return view

    def finish(self, view: FieldView, ff: FormField, required: bool) -> None:
        """Attributes of the input(s): ids, ARIA, required, limits, the widget's own."""
        f, widget = ff.field, view.widget
        # A single checkbox always has a value (unchecked is false): never "required".
        view.required = required and not (widget == "checkbox" and f.kind == "boolean")
        if ff.always_required and not (widget == "checkbox" and f.kind == "boolean"):
            view.wrapper["data-df-always-required"] = "true"
        if view.hidden:
            view.wrapper["hidden"] = True
        described = []
        if view.help:
            described.append(f"{ff.name}-help")
        if widget == "tags":
            view.hint = ui_text("tags_hint", self.locale)
        elif widget == "duration":
            view.hint = ui_text("duration_hint", self.locale)
        elif widget == "signature":
            view.hint = ui_text("signature_hint", self.locale)
        if view.hint:
            described.append(f"{ff.name}-hint")
        if view.errors:
            described.append(f"{ff.name}-error")
        attrs: dict[str, Any] = {"id": ff.name, "name": ff.name}
        if described:
            attrs["aria-describedby"] = " ".join(described)
        if view.errors:
            attrs["aria-invalid"] = "true"
        if view.required and widget not in ("signature",) and not (
                widget in ("photo", "file") and view.kept):
            attrs["required"] = True
        if not (widget in ("signature", "hidden") or (widget == "checkbox" and f.kind == "boolean")
                or (widget in ("photo", "file") and view.kept)):
            attrs["data-df-required-control"] = True
        placeholder = self.text(ff.placeholder)
        if placeholder:
            attrs["placeholder"] = placeholder
        if ff.readonly:
            if widget in ("text", "textarea", "number", "date", "datetime", "duration", "tags"):
                attrs["readonly"] = True
            else:
                attrs["disabled"] = True
        self._widget_attrs(view, ff, f, attrs)
        view.attrs = attrs
        if widget in ("radio", "checkbox") and view.options:
            self._choices(view, attrs)
        if widget in ("radio", "geo", "signature") or (widget == "checkbox" and view.options):
            view.extra["group"] = {"class": "df-group",
                                   "aria-describedby": attrs.get("aria-describedby")}
        if widget == "signature":
            view.extra["canvas"] = {
                "id": f"{ff.name}-pad", "class": "df-signature-pad", "width": 600,
                "height": 200, "tabindex": 0, "role": "img",
                "aria-label": view.extra["pad_label"],
                "aria-describedby": attrs.get("aria-describedby"),
                "aria-invalid": attrs.get("aria-invalid"), "data-df-signature": ff.name}

    def _choices(self, view: FieldView, attrs: dict[str, Any]) -> None:
        """Per-option attributes of a radio group or a checkbox list."""
        radio = view.widget == "radio"
        for option in view.options:
            option["attrs"] = {
                "type": "radio" if radio else "checkbox", "id": option["id"],
                "name": view.name, "value": option["value"], "checked": option["selected"],
                "required": radio and attrs.get("required", False),
                "aria-invalid": attrs.get("aria-invalid"),
                "data-df-required-control": radio and attrs.get("data-df-required-control"),
                "disabled": attrs.get("disabled")}

    def _widget_attrs(self, view: FieldView, ff: FormField, f: FieldDef,
                      attrs: dict[str, Any]) -> None:
        widget = view.widget
        spec = WIDGETS[widget]
        if spec.input_type:
            attrs["type"] = spec.input_type
        if f.kind in ("string", "text") and f.max_length:
            attrs["maxlength"] = f.max_length
        if f.kind in ("string", "text") and f.min_length:
            attrs["minlength"] = f.min_length
        if widget == "number" or (widget == "text" and f.kind in ("integer", "decimal")):
            whole = f.kind in ("integer", "reference")
            attrs["inputmode"] = "numeric" if whole else "decimal"
            if widget == "number":
                attrs["step"] = "1" if whole else "any"
                low = 1 if f.kind == "reference" else f.minimum
                if isinstance(low, int | float) and not isinstance(low, bool):
                    attrs["min"] = low
                if isinstance(f.maximum, int | float) and not isinstance(f.maximum, bool):
                    attrs["max"] = f.maximum
        if widget in ("date", "datetime"):
            for key, bound in (("min", f.minimum), ("max", f.maximum)):
                if bound is not None:
                    attrs[key] = self.form_value(f, bound) if f.kind == "datetime" \
                        else str(bound)
        if widget == "duration":
            attrs["pattern"] = DURATION_PATTERN.strip("^$")
            attrs.setdefault("placeholder", ui_text("duration_hint", self.locale))
        if widget == "textarea":
            attrs["rows"] = 4
        if widget == "geo":
            self._geo(view, ff, attrs)
        elif widget in ("photo", "file"):
            if f.accept:
                attrs["accept"] = ",".join(f.accept)
            if widget == "photo":
                attrs["capture"] = "environment"
            if f.multiple:
                attrs["multiple"] = True
            attrs["type"] = "file"
            limit = f.max_size_mb
            if limit is not None:
                attrs["data-max-size"] = int(limit * 1024 * 1024)
                attrs["data-df-msg-too-large"] = ui_text("file_too_large_client", self.locale,
                                                         limit=f"{limit:g}")
            if view.kept:
                view.extra["kept_text"] = ui_text("files_kept", self.locale,
                                                  count=len(view.kept))
        elif widget == "signature":
            view.extra.update(
                focus_id=f"{ff.name}-pad", pad_label=ui_text("signature_pad", self.locale),
                clear_text=ui_text("clear_signature", self.locale),
                kept_text=ui_text("signature_kept", self.locale) if view.kept else "")
            view.value = view.kept[-1] if view.kept else ""
        elif widget == "radio":
            view.extra["focus_id"] = f"{ff.name}-0"
        elif widget == "checkbox" and f.kind == "boolean":
            attrs["type"] = "checkbox"
            attrs["value"] = "true"
            if view.value == "true":
                attrs["checked"] = True
        elif widget == "checkbox":
            view.extra["focus_id"] = f"{ff.name}-0"
        if widget not in ("textarea", "select", "radio", "checkbox", "geo", "photo", "file",
                          "signature"):
            attrs["value"] = view.value

    def _geo(self, view: FieldView, ff: FormField, attrs: dict[str, Any]) -> None:
        raw = self.value_of(ff.name)
        point = raw if isinstance(raw, Mapping) else {}
        parts = []
        for part, low, high, word in (("lat", -90, 90, "latitude"),
                                      ("lng", -180, 180, "longitude")):
            pid = f"{ff.name}_{part}"
            p_attrs: dict[str, Any] = {
                "type": "number", "id": pid, "name": pid, "step": "any", "min": low,
                "max": high, "inputmode": "decimal", "value": _number_text(point.get(part)),
                "data-df-required-control": True}
            for key in ("aria-describedby", "aria-invalid", "required", "readonly", "disabled"):
                if key in attrs:
                    p_attrs["readonly" if key == "disabled" else key] = attrs[key]
            parts.append({"label": ui_text(word, self.locale), "attrs": p_attrs})
        view.extra.update(
            focus_id=f"{ff.name}_lat", parts=parts, readonly=ff.readonly,
            button={"type": "button", "class": "df-geo-locate", "data-df-geo": ff.name,
                    "data-df-msg-locating": ui_text("locating", self.locale),
                    "data-df-msg-found": ui_text("location_found", self.locale),
                    "data-df-msg-failed": ui_text("location_failed", self.locale),
                    "data-df-msg-unsupported": ui_text("location_unsupported", self.locale)},
            button_text=ui_text("use_my_location", self.locale))

    def options(self, ff: FormField, widget: str, raw: Any) -> list[dict[str, Any]]:
        f = ff.field
        if f.kind == "enum":
            pairs = [(v.value, self.text(v.label, v.value)) for v in f.enum_values]
        elif f.kind == "boolean":
            pairs = [("true", ui_text("yes", self.locale)), ("false", ui_text("no", self.locale))]
        else:
            pairs = [(str(v), str(text)) for v, text in self.choices.get(ff.name, ())]
        if isinstance(raw, list):
            chosen = {str(v) for v in raw}
        elif isinstance(raw, Mapping):
            chosen = {str(raw.get("id"))}
        elif isinstance(raw, bool):
            chosen = {"true" if raw else "false"}
        else:
            chosen = set() if raw is None else {str(raw)}
        return [{"value": str(v), "label": text, "selected": str(v) in chosen,
                 "id": f"{ff.name}-{i}"} for i, (v, text) in enumerate(pairs)]

    # -- values
    def form_value(self, f: FieldDef, raw: Any) -> str:
        """A value as an input shows it (``datetime-local`` in the app's zone, ``15m``...)."""
        if raw is None:
            return ""
        kind = f.kind
        if kind == "boolean":
            return "true" if raw is True or str(raw).lower() == "true" else \
                ("false" if raw is False else str(raw))
        if kind == "datetime":
            dt = raw if isinstance(raw, datetime) else _parse_datetime(raw)
            if dt is None:
                return str(raw)
            if dt.tzinfo is not None:
                dt = dt.astimezone(self.tz)
            return dt.strftime("%Y-%m-%dT%H:%M")
        if kind == "date" and isinstance(raw, date):
            return raw.isoformat()
        if kind == "duration" and isinstance(raw, timedelta):
            return duration_text(raw)
        if kind == "list" and isinstance(raw, list | tuple):
            return ", ".join(str(v) for v in raw)
        if kind == "reference" and isinstance(raw, Mapping):
            return str(raw.get("id", ""))
        if kind == "geo" and isinstance(raw, Mapping):
            return f"{_number_text(raw.get('lat'))},{_number_text(raw.get('lng'))}"
        if isinstance(raw, float):
            return _number_text(raw)
        if isinstance(raw, list | dict):
            return ""
        return str(raw)

    def client_value(self, f: FieldDef, raw: Any) -> Any:
        """A value as the browser interpreter compares it (see static JS ``coerce``)."""
        if raw is None:
            return None
        try:
            value = raw if _is_runtime(f, raw) else runtime_value(f, raw, self.app.timezone)
        except Exception:  # noqa: BLE001 - a context value that does not parse is unknown
            return None
        if isinstance(value, datetime):
            return self.form_value(f, value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, timedelta):
            return value.total_seconds()
        if f.kind == "reference" and isinstance(value, Mapping):
            return value.get("id")
        return value


def _is_runtime(f: FieldDef, raw: Any) -> bool:
    return isinstance(raw, datetime | date | timedelta) or (
        f.kind == "reference" and isinstance(raw, Mapping))


def _parse_datetime(raw: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)
