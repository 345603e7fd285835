"""A notification in compiled form: what planning needs, built once per app version.

:func:`spec_for` turns a checked ``notifications/*.yaml`` item
(:class:`~dispatchflow.dsl.items.CheckedItem`) into a :class:`NotificationSpec`:
the ``when`` condition and ``field`` recipients compiled to Python functions
(from the checked AST, as rules are), the quiet-hours calendar built, the digest
window parsed. Specs are cached per (app version, notification), so an event
pays for none of this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ...dsl.ast import parse_duration
from ...dsl.codegen import compile_expression
from ...dsl.compiler import App
from ...flows.calendar import BusinessCalendar, build_calendars
from ...lru import LruCache
from .errors import NotificationError
from .recipients import FieldTarget, compile_field_target

#: Severities, least urgent first; ``critical`` messages are never held or digested.
SEVERITIES = ("info", "warning", "critical")
CRITICAL = "critical"


@dataclass(frozen=True)
class NotificationSpec:
    """One notification of one app version, ready to plan (see module docs)."""

    name: str
    entity: str
    file: str
    label: Mapping[str, str]
    on: str | None
    channels: tuple[str, ...]
    to: tuple[Mapping[str, Any], ...]
    severity: str
    when: Callable[..., Any] | None
    fields: Mapping[int, FieldTarget] = field(default_factory=dict)
    webhook_env: str | None = None
    quiet_hours: BusinessCalendar | None = None
    digest_window: timedelta | None = None

    @property
    def critical(self) -> bool:
        return self.severity == CRITICAL


_CACHE: LruCache[tuple[str, str, str, str], NotificationSpec] = LruCache(512)
_CALENDARS: dict[tuple[str, str, str], dict[str, BusinessCalendar]] = {}
_LOCK = threading.Lock()


def spec_for(app: App, name: str) -> NotificationSpec:
    """The compiled notification ``name`` of ``app`` (cached).

    Raises NotificationError when the app has no such notification.
    """
    return _CACHE.get_or_build((app.name, app.version, app.digest, name),
                               lambda: _build(app, name))


def _calendars(app: App) -> dict[str, BusinessCalendar]:
    key = (app.name, app.version, app.digest)
    with _LOCK:
        found = _CALENDARS.get(key)
    if found is None:
        found = build_calendars(app.calendars, app.timezone)
        with _LOCK:
            if len(_CALENDARS) > 16:
                _CALENDARS.clear()
            _CALENDARS[key] = found
    return found


def _build(app: App, name: str) -> NotificationSpec:
    item = app.notifications.get(name)
    if item is None:
        raise NotificationError(f"no notification '{name}'",
                                hint="notifications are defined in notifications/*.yaml; "
                                f"this app has {', '.join(sorted(app.notifications)) or 'none'}")
    data = item.data
    entity = str(data["entity"])
    when_expr = item.exprs.get(("when",))
    when = None if when_expr is None else compile_expression(when_expr, [entity], item.file,
                                                             boolean=True)
    fields = {int(path[1]): compile_field_target(expr, entity, item.file)
              for path, expr in item.exprs.items()
              if len(path) == 3 and path[0] == "to" and path[2] == "field"}
    calendar = None
    if data.get("quiet_hours"):
        calendar = _calendars(app).get(str(data["quiet_hours"]))
        if calendar is None:
            raise NotificationError(f"notification '{name}' names the calendar "
                                    f"'{data['quiet_hours']}', which app.yaml does not define",
                                    file=item.file)
    label = data.get("label")
    return NotificationSpec(
        name=name, entity=entity, file=item.file,
        label=label if isinstance(label, dict) else {app.default_locale: label or name},
        on=data.get("on"), channels=tuple(data["channels"]), to=tuple(data["to"]),
        severity=str(data.get("severity", "info")), when=when, fields=fields,
        webhook_env=data.get("webhook_url_env"), quiet_hours=calendar,
        digest_window=parse_duration(str(data["digest_window"]))
        if data.get("digest_window") else None)
