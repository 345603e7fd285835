"""Values formatted for people: every page shows stored values through :class:`Display`.

- date-times in the viewer's time zone (the user's ``timezone`` attribute when
  it names a real zone, else the app's ``timezone``), to the minute, written
  the way the locale writes them: ``2026年12月7日 13:05`` / ``7 Dec 2026, 13:05``;
- booleans as 是/否 or Yes/No; enum values and tags by the bundle's labels
  (``values[].label``, app.yaml ``tags``);
- references by the target's display name (its entity's ``title_field``);
- durations as ``3 小时 20 分`` / ``3 h 20 min``;
- numbers without float noise, geo points as ``lat, lng``, files as a count.

Pure apart from the reference lookup, which the caller passes in (see
:func:`~.pages.reference_namer`): the web layer decides who may see which name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..dsl.compiler import App
from ..dsl.model import EntityDef, FieldDef

#: ``names(entity, record_id)`` -> the record's display name, or None when not shown.
Namer = Callable[[str, int], str | None]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_WORDS: dict[str, dict[str, str]] = {
    "zh": {"yes": "是", "no": "否", "d": " 天", "h": " 小时", "m": " 分", "sep": "、",
           "files": "{n} 个文件"},
    "en": {"yes": "Yes", "no": "No", "d": " d", "h": " h", "m": " min", "sep": ", ",
           "files": "{n} file(s)"},
}


def viewer_zone(app: App, attributes: Mapping[str, Any] | None = None) -> ZoneInfo:
    """The zone a viewer reads times in: their ``timezone`` attribute, else the app's."""
    wanted = (attributes or {}).get("timezone")
    if isinstance(wanted, str) and wanted:
        try:
            return ZoneInfo(wanted)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a bad user setting must not break pages: fall back to the app's zone
    return ZoneInfo(app.timezone)


class Display:
    """Formats values of ``app`` for one viewer (locale ``zh``/``en`` and time zone)."""

    def __init__(self, app: App, locale: str, zone: ZoneInfo,
                 names: Namer | None = None) -> None:
        self.app = app
        self.locale = locale if locale in _WORDS else "zh"
        self.zone = zone
        self.names = names
        self.words = _WORDS[self.locale]

    def label(self, value: Mapping[str, str] | None, fallback: str = "") -> str:
        """A bundle label in the viewer's language (the other language, then ``fallback``)."""
        if not value:
            return fallback
        return value.get(self.locale) or value.get(self.app.default_locale) or \
            next(iter(value.values()), fallback) or fallback

    def field_label(self, entity: EntityDef, name: str) -> str:
        """The label of a field of ``entity`` (its name when it has none)."""
        f = entity.fields.get(name)
        return self.label(f.label, name) if f is not None else name

    def value(self, entity: EntityDef, name: str, value: Any) -> str:
        """A value of field ``name`` of ``entity`` as people read it ('' for nothing)."""
        f = entity.fields.get(name)
        if value is None or value == [] or value == "":
            return ""
        if f is None:
            return self.scalar(value)
        if name == "tags" and f.system:
            return self.tags(value)
        return self.field_value(f, value)

    def field_value(self, f: FieldDef, value: Any) -> str:
        """A value of the field ``f`` (see :meth:`value`)."""
        kind = f.kind
        if kind == "enum":
            return self.enum(f, value)
        if kind == "boolean":
            return self.boolean(value)
        if kind == "datetime":
            return self.datetime(value)
        if kind == "date":
            return self.date(value)
        if kind == "duration":
            return self.duration(value)
        if kind == "reference":
            return self.reference(f.reference or "", value)
        if kind == "geo" and isinstance(value, Mapping):
            return f"{self.number(value.get('lat'))}, {self.number(value.get('lng'))}"
        if kind == "attachment":
            count = len(value) if isinstance(value, list) else 1
            return self.words["files"].format(n=count)
        if isinstance(value, list | tuple):
            return self.words["sep"].join(self.scalar(v) for v in value)
        return self.scalar(value)

    def enum(self, f: FieldDef, value: Any) -> str:
        """An enum value by its label (the raw value if the bundle does not list it)."""
        for option in f.enum_values:
            if option.value == value:
                return self.label(option.label, str(value))
        return str(value)

    def tags(self, tags: Any) -> str:
        """Tags by their app.yaml labels, in the order they were set."""
        items = tags if isinstance(tags, list | tuple) else [tags]
        return self.words["sep"].join(self.label(self.app.tags.get(str(t)), str(t))
                                      for t in items)

    def boolean(self, value: Any) -> str:
        """是/否 or Yes/No."""
        truth = value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        return self.words["yes"] if truth else self.words["no"]

    def datetime(self, value: Any) -> str:
        """A date-time in the viewer's zone, to the minute."""
        dt = _as_datetime(value)
        if dt is None:
            return str(value)
        if dt.tzinfo is None:  # stored naive values are UTC
            dt = dt.replace(tzinfo=ZoneInfo("UTC"))
        dt = dt.astimezone(self.zone)
        clock = f"{dt.hour:02d}:{dt.minute:02d}"
        if self.locale == "zh":
            return f"{dt.year}年{dt.month}月{dt.day}日 {clock}"
        return f"{dt.day} {_MONTHS[dt.month - 1]} {dt.year}, {clock}"

    def date(self, value: Any) -> str:
        """A calendar date."""
        d = value if isinstance(value, date) else _as_date(value)
        if d is None:
            return str(value)
        if self.locale == "zh":
            return f"{d.year}年{d.month}月{d.day}日"
        return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"

    def duration(self, value: Any) -> str:
        """A duration to the minute: ``3 小时 20 分`` / ``3 h 20 min`` (seconds if a number)."""
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        sign = "-" if seconds < 0 else ""
        minutes = int(round(abs(seconds) / 60))
        days, rest = divmod(minutes, 1440)
        hours, mins = divmod(rest, 60)
        parts = [f"{n}{self.words[u]}" for n, u in ((days, "d"), (hours, "h"), (mins, "m"))
                 if n]
        return sign + (" ".join(parts) if parts else f"0{self.words['m']}")

    def reference(self, entity: str, value: Any) -> str:
        """A referenced record by its display name (``#id`` when it is not shown)."""
        record_id = value.get("id") if isinstance(value, Mapping) else value
        try:
            rid = int(str(record_id))
        except ValueError:
            return str(value)
        name = self.names(entity, rid) if self.names is not None else None
        return name if name else f"#{rid}"

    def number(self, value: Any) -> str:
        """A number without float noise (at most 6 decimals)."""
        if isinstance(value, float):
            text = f"{value:.6f}".rstrip("0").rstrip(".")
            return text if text not in ("-0", "") else "0"
        return str(value)

    def scalar(self, value: Any) -> str:
        """Any other value."""
        if isinstance(value, bool):
            return self.boolean(value)
        if isinstance(value, datetime):
            return self.datetime(value)
        if isinstance(value, timedelta):
            return self.duration(value)
        if isinstance(value, float):
            return self.number(value)
        return str(value)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
