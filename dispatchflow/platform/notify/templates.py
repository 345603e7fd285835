"""Subject and body templates of notifications: compiled once, rendered in a sandbox.

A notification's ``subject`` and ``body`` are Jinja templates, one per locale
(``{zh: ..., en: ...}``) or one for all. They are rendered by a
:class:`~.sandbox.GuardedEnvironment` (immutable sandbox, time limit, size caps)
with ``StrictUndefined``: a misspelt field or reading a field of an empty
reference is an error, never silently empty text. Two environments share one
setup: the **text** one (subject, plain-text part, no escaping: a subject never
shows ``&lt;``) and the **HTML** one (autoescaped: a ``<script>`` in a record
value arrives as text).

What a template sees:

* the record under its entity's name (``work_order``) and as ``record``: fields
  by name, references followed on demand (``work_order.assignee.name``), dates
  in the app's time zone, enum fields printing their label in the message's
  language (compare with the value: ``work_order.status == "done"``), texts cut
  to ``defaults.NOTIFY_FIELD_MAX_CHARS`` characters (ending with "…");
* ``notification`` (``name``, ``label``, ``severity``), ``now`` (the event time,
  in the app's time zone) and ``locale``.

Printed values: null prints nothing, datetimes as ``2026-03-02 10:00``, durations
as ``1 h 30 min`` / ``1小时30分钟``, booleans as yes/no (是/否), lists joined
with commas. Compiled templates are cached per app version, notification, part,
locale and flavour. :func:`template_problems` reports what ``dispatchflow check``
should: syntax errors, oversize templates, unknown filters, names and fields
(:func:`template_diagnostics`: the same as diagnostics with positions).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import cache
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.utils import pass_context
from markupsafe import Markup

from ...dsl.compiler import App
from ...dsl.diagnostics import Diagnostic, Severity
from ...dsl.model import EntityDef, FieldDef
from ...dsl.suggest import did_you_mean
from ...forms.messages import label_text
from ...lru import LruCache
from .. import defaults
from .errors import NotificationError, TemplateRenderError
from .sandbox import GuardedEnvironment, check_size, limits

#: The template parts a notification has.
PARTS = ("subject", "body")

Resolve = Callable[[str, Any], "Mapping[str, Any] | None"]

_YES_NO = {"zh": ("是", "否"), "en": ("yes", "no")}
_UNITS = {"zh": (("天", 86400), ("小时", 3600), ("分钟", 60), ("秒", 1)),
          "en": ((" d", 86400), (" h", 3600), (" min", 60), (" s", 1))}


# ------------------------------------------------------------------ what templates see


class EnumText(str):
    """An enum field's value that prints as its label (compares as the value)."""

    _labels: dict[str, dict[str, str]]

    def __new__(cls, value: str, labels: dict[str, dict[str, str]]) -> EnumText:
        obj = super().__new__(cls, value)
        obj._labels = labels
        return obj

    def label(self, locale: str) -> str:
        return label_text(self._labels.get(str(self)), locale, fallback=str(self))


class RecordContext:
    """Shared by the record views of one render: entities, resolver, time zone, cache."""

    def __init__(self, entities: Mapping[str, EntityDef], resolve: Resolve | None,
                 tz: tzinfo) -> None:
        self.entities, self.resolve, self.tz = entities, resolve, tz
        self._loaded: dict[tuple[str, Any], TemplateRecord | None] = {}

    def view(self, entity: str, data: Mapping[str, Any]) -> TemplateRecord:
        return TemplateRecord(self.entities[entity], data, self)

    def present(self, f: FieldDef, value: Any) -> Any:
        """A stored value as templates see it (see module docs)."""
        if value is None:
            return None
        if f.kind == "reference":
            return self._reference(f.reference or "", value)
        if isinstance(value, datetime):
            return value.astimezone(self.tz)
        if f.kind == "enum" and isinstance(value, str):
            return EnumText(value, {v.value: v.label for v in f.enum_values})
        return capped(value)

    def _reference(self, target: str, value: Any) -> TemplateRecord | None:
        if isinstance(value, TemplateRecord):
            return value
        if isinstance(value, Mapping) and set(value) - {"id"} and target in self.entities:
            return self.view(target, value)
        rid = value.get("id") if isinstance(value, Mapping) else value
        key = (target, rid)
        if key not in self._loaded:
            data = None if self.resolve is None or target not in self.entities \
                else self.resolve(target, rid)
            self._loaded[key] = None if data is None else self.view(target, data)
        return self._loaded[key]


def capped(value: Any) -> Any:
    """``value`` with every text in it cut to ``defaults.NOTIFY_FIELD_MAX_CHARS``.

    A filter is one call the deadline cannot interrupt while it runs in C, so what
    a call gets from a record is bounded (see :mod:`.sandbox`).
    """
    cap = defaults.NOTIFY_FIELD_MAX_CHARS
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap - 1] + "…"
    if isinstance(value, list | tuple):
        return [capped(v) for v in value]
    if isinstance(value, Mapping):
        return {k: capped(v) for k, v in value.items()}
    return value


class TemplateRecord:
    """A read-only record for templates: ``rec.field`` / ``rec["field"]``; unknown fields
    are undefined (an error under StrictUndefined). Prints as its title field."""

    __slots__ = ("_entity", "_data", "_ctx")

    def __init__(self, entity: EntityDef, data: Mapping[str, Any], ctx: RecordContext) -> None:
        self._entity, self._data, self._ctx = entity, data, ctx

    def __getitem__(self, name: str) -> Any:
        f = self._entity.fields.get(name)
        if f is None:
            raise KeyError(name)
        return self._ctx.present(f, self._data.get(name))

    def __contains__(self, name: object) -> bool:
        return name in self._entity.fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._entity.fields)

    def __str__(self) -> str:
        title = self._entity.title_field
        value = self._data.get(title) if title else None
        return capped(str(value if value is not None else self._data.get("id", "")))

    def __repr__(self) -> str:
        return f"<{self._entity.name} {self._data.get('id')}>"


class _Undefined(StrictUndefined):
    """StrictUndefined whose messages name the entity and suggest the field meant."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint:  # the sandbox's own refusal ("... is unsafe")
            return super()._undefined_message
        if isinstance(obj, TemplateRecord) and name is not None:
            entity = obj._entity
            hint = did_you_mean(str(name), entity.fields)
            return f"{entity.name} has no field '{name}'" + (f" ({hint})" if hint else "")
        if obj is None and name is not None:
            return (f"cannot read '{name}' of an empty value; guard it with "
                    "{% if ... %}")
        return super()._undefined_message


@pass_context
def _finalize(context: jinja2.runtime.Context, value: Any) -> Any:
    """How a ``{{ value }}`` prints (see module docs)."""
    return _printable(value, str(context.get("locale") or "zh"))


def _printable(value: Any, locale: str) -> Any:
    lang = locale if locale in _YES_NO else "en"
    if value is None:
        return ""
    if isinstance(value, EnumText):
        return value.label(locale)
    if isinstance(value, Markup | str):
        return value
    if isinstance(value, bool):
        return _YES_NO[lang][0 if value else 1]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value, lang)
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, TemplateRecord):
        return str(value)
    if isinstance(value, Mapping) and {"lat", "lng"} <= set(value):
        return f"{value['lat']}, {value['lng']}"
    if isinstance(value, Mapping) and ("filename" in value or "name" in value):
        return str(value.get("filename") or value.get("name"))
    if isinstance(value, list | tuple):
        check_size(value)
        return ", ".join(str(_printable(v, locale)) for v in value)
    return value


def _duration(value: timedelta, lang: str) -> str:
    seconds = int(abs(value.total_seconds()))
    parts: list[str] = []
    for unit, size in _UNITS[lang]:
        if seconds >= size or (not parts and size == 1):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    sep = "" if lang == "zh" else " "
    return ("-" if value.total_seconds() < 0 else "") + sep.join(parts)


# ------------------------------------------------------------------ environments and cache


@cache
def environment(html: bool) -> GuardedEnvironment:
    """The shared text (``html=False``) or autoescaped HTML environment."""
    return GuardedEnvironment(autoescape=html, undefined=_Undefined, finalize=_finalize,
                              keep_trailing_newline=False)


_CACHE: LruCache[tuple, jinja2.Template] = LruCache(2048)


def template_source(app: App, name: str, part: str, locale: str) -> str | None:
    """The text of ``part`` in ``locale`` (else the app's default locale, else any)."""
    item = app.notifications.get(name)
    if item is None:
        raise NotificationError(f"no notification '{name}'",
                                hint="notifications are defined in notifications/*.yaml")
    value = item.data.get(part)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return label_text(value, locale, default_locale=app.default_locale) or None


def compiled(app: App, name: str, part: str, locale: str, html: bool) -> jinja2.Template | None:
    """The compiled template (cached per app version); None when the part is absent.

    Raises TemplateRenderError on a syntax error or an oversize template.
    """
    key = (app.name, app.version, app.digest, name, part, locale, html)
    found = _CACHE.get(key)
    if found is not None:
        return found
    source = template_source(app, name, part, locale)
    if source is None:
        return None
    cap = defaults.NOTIFY_TEMPLATE_MAX_CHARS
    if len(source) > cap:
        raise TemplateRenderError(f"the template has {len(source)} characters; at most {cap} "
                                  "are allowed", notification=name, locale=locale, part=part)
    try:
        template = environment(html).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(f"line {exc.lineno}: {exc.message}", notification=name,
                                  locale=locale, part=part,
                                  hint="templates use Jinja syntax: {{ work_order.title }}"
                                  ) from exc
    return _CACHE.put(key, template)


# ------------------------------------------------------------------ rendering


@dataclass(frozen=True)
class RenderedMessage:
    """One notification rendered for one locale: subject, plain text and an HTML fragment."""

    locale: str
    subject: str
    text: str
    html: str


def render_message(app: App, name: str, record: Mapping[str, Any], *, locale: str,
                   now: datetime, tz: tzinfo, resolve: Resolve | None = None,
                   timeout: float | None = None) -> RenderedMessage:
    """Render ``name``'s subject and body for ``record`` in ``locale``.

    ``resolve(entity, id)`` loads referenced records (``work_order.assignee.name``);
    ``timeout`` (seconds of CPU time, default ``defaults.NOTIFY_RENDER_TIMEOUT``)
    bounds the three renders (subject, text, HTML) together.
    A missing subject is the notification's label. Raises TemplateRenderError
    naming the notification, locale and part.
    """
    item = app.notifications.get(name)
    if item is None:
        raise NotificationError(f"no notification '{name}'")
    entity = item.data["entity"]
    ctx = RecordContext(app.entities, resolve, tz)
    view = ctx.view(entity, record)
    label = item.data.get("label")
    variables = {
        "record": view, "now": now.astimezone(tz), "locale": locale,
        "notification": {"name": name, "severity": item.data.get("severity", "info"),
                         "label": label_text(label, locale, name, app.default_locale)
                         if isinstance(label, dict) else (label or name)},
        entity: view,
    }
    budget = (timeout if timeout is not None else defaults.NOTIFY_RENDER_TIMEOUT,
              time.thread_time())
    args = (app, name, locale, variables, budget)
    subject = _render(*args, "subject", html=False)
    if subject is None:
        subject = str(variables["notification"]["label"])  # type: ignore[index]
    text = _render(*args, "body", html=False) or ""
    html = _render(*args, "body", html=True) or ""
    return RenderedMessage(locale, " ".join(subject.split()), text.strip("\n"),
                           f'<div style="white-space: pre-line">{html.strip()}</div>')


def _render(app: App, name: str, locale: str, variables: dict[str, Any],
            budget: tuple[float, float], part: str, html: bool) -> str | None:
    """One part; ``budget`` is (CPU seconds, thread_time() when the message began)."""
    template = compiled(app, name, part, locale, html)
    if template is None:
        return None
    cap = defaults.NOTIFY_OUTPUT_MAX_CHARS
    out: list[str] = []
    size = 0
    try:
        with limits(budget[0], cap, since=budget[1]):
            for chunk in template.generate(variables):
                size += len(chunk)
                if size > cap:
                    raise TemplateRenderError(f"the rendered text is longer than {cap} "
                                              "characters", notification=name, locale=locale,
                                              part=part)
                out.append(chunk)
    except TemplateRenderError:
        raise
    except RecursionError as exc:
        raise TemplateRenderError("macros call themselves too deeply", notification=name,
                                  locale=locale, part=part) from exc
    except Exception as exc:  # noqa: BLE001 - any failure of author code is reported alike
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise TemplateRenderError(message, notification=name, locale=locale, part=part) \
            from exc
    return "".join(out)


# ------------------------------------------------------------------ static checks

#: Names every notification template may use besides its entity's name.
TEMPLATE_NAMES = ("record", "notification", "now", "locale")


def template_problems(app: App) -> list[tuple[str, str]]:
    """Problems ``dispatchflow check`` should report for the templates: ``(file, message)``.

    Syntax errors, unknown filters, templates over the size cap, names a template
    cannot see and fields its entity does not have (``work_order.titel``, followed
    through references). Pure: renders nothing, touches no database.
    """
    problems: list[tuple[str, str]] = []
    env = environment(False)
    for name, item in app.notifications.items():
        entity = item.data.get("entity")
        known = {*TEMPLATE_NAMES, entity, *env.globals}
        for part in PARTS:
            value = item.data.get(part)
            texts = {"": value} if isinstance(value, str) else dict(value or {})
            for lang, text in texts.items():
                where = f"{part}.{lang}" if lang else part
                for message in _problems_of(app, str(entity), str(text), known):
                    problems.append((item.file, f"notification '{name}' {where}: {message}"))
    return problems


def template_diagnostics(app: App) -> list[Diagnostic]:
    """:func:`template_problems` as E1024 error diagnostics, for ``dispatchflow check``.

    Each points at the ``subject:``/``body:`` key (or its ``zh:``/``en:`` line) in the
    notification's file; line and column are 0 when the part cannot be found.
    """
    out = []
    for file, message in template_problems(app):
        part = re.search(r"' (subject|body)(?:\.(zh|en))?: ", message)
        lines = app.sources.get(file, "").splitlines()
        line = 0
        if part:
            key = re.compile(rf"^\s*{part.group(1)}:")
            line = next((i for i, text in enumerate(lines, 1) if key.match(text)), 0)
            if part.group(2):
                sub = re.compile(rf"^\s+{part.group(2)}:")
                line = next((i for i, text in enumerate(lines, 1)
                             if i > line and sub.match(text)), line)
        column = len(lines[line - 1]) - len(lines[line - 1].lstrip()) + 1 if line else 0
        out.append(Diagnostic(Severity.ERROR, "E1024", message, file, line, column,
                              hint="templates see the record by its entity name (and as "
                                   "`record`), `notification`, `now` and `locale`",
                              source_line=lines[line - 1] if line else None))
    return out


def _problems_of(app: App, entity: str, text: str, known: set[Any]) -> list[str]:
    cap = defaults.NOTIFY_TEMPLATE_MAX_CHARS
    if len(text) > cap:
        return [f"the template has {len(text)} characters; at most {cap} are allowed"]
    env = environment(False)
    try:
        tree = env.parse(text)
        env.compile(tree)  # unknown filters and tests are found here
    except jinja2.TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    out = []
    for unknown in sorted(meta.find_undeclared_variables(tree) - known):
        hint = did_you_mean(unknown, [k for k in known if isinstance(k, str)])
        out.append(f"unknown name '{unknown}'" + (f" ({hint})" if hint else
                                                  f"; templates see {entity}, record, "
                                                  "notification, now and locale"))
    seen: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        message = _path_problem(app, entity, node)
        if message and message not in seen:
            seen.add(message)
            out.append(message)
    return out


def _path_problem(app: App, entity: str, node: nodes.Node) -> str | None:
    """A problem with a ``root.field.field`` chain rooted at the record, or None."""
    steps: list[str] = []
    current: nodes.Node = node
    while isinstance(current, nodes.Getattr | nodes.Getitem):
        if isinstance(current, nodes.Getattr):
            steps.append(current.attr)
        elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str):
            steps.append(current.arg.value)
        else:
            return None
        current = current.node
    if not isinstance(current, nodes.Name) or current.name not in (entity, "record"):
        return None
    target: EntityDef | None = app.entities.get(entity)
    path = current.name
    for step in reversed(steps):
        if target is None:
            return None
        f = target.fields.get(step)
        if f is None:
            hint = did_you_mean(step, target.fields)
            return f"{path} has no field '{step}'" + (f" ({hint})" if hint else "")
        path += "." + step
        target = app.entities.get(f.reference or "") if f.kind == "reference" else None
    return None
