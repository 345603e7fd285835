"""Convert JSON-like record data into the runtime values compiled rules expect.

Records reaching the rules layer hold Python values: ``datetime`` (timezone
aware), ``date``, ``timedelta`` for durations, floats for decimals and
distances, ``{"lat", "lng"}`` dicts for geo points, and nested dicts for
resolved references. Test cases, ``eval --record`` files and API payloads
write these as JSON (ISO strings, ``"15m"``); :func:`coerce_record` converts
them, field by field, following references.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ValidationError
from .ast import parse_duration
from .model import EntityDef


def parse_datetime(value: Any, tz: str = "UTC") -> datetime:
    """An aware datetime from an ISO string (naive ones are taken in ``tz``)."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"not an ISO date-time: {value!r}",
                                  hint="write e.g. 2026-03-02T10:00:00+08:00") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt


def coerce_value(kind: str, value: Any, tz: str = "UTC") -> Any:
    """One field value of ``kind`` from its JSON form."""
    if value is None:
        return None
    if kind == "datetime":
        return parse_datetime(value, tz)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if kind == "duration":
        if isinstance(value, timedelta):
            return value
        if isinstance(value, int | float):
            return timedelta(minutes=value)
        return parse_duration(str(value))
    if kind == "decimal":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "geo":
        if isinstance(value, list | tuple):
            return {"lat": float(value[0]), "lng": float(value[1])}
        return {"lat": float(value["lat"]), "lng": float(value["lng"])}
    if kind == "list":
        return list(value)
    return value


def coerce_record(entity: EntityDef, data: dict[str, Any], entities: dict[str, EntityDef],
                  tz: str = "UTC", depth: int = 0) -> dict[str, Any]:
    """A runtime record from JSON data; unknown keys raise ValidationError.

    Defaults declared on the entity fill fields the data leaves out.
    """
    if not isinstance(data, dict):
        raise ValidationError(f"a {entity.name} record must be a mapping, got {data!r}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        fdef = entity.fields.get(key)
        if fdef is None:
            raise ValidationError(f"{entity.name} has no field '{key}'", path=key)
        try:
            if fdef.kind == "reference" and isinstance(value, dict):
                target = entities[fdef.reference or ""]
                out[key] = coerce_record(target, value, entities, tz, depth + 1) \
                    if depth < 8 else value
            else:
                out[key] = coerce_value(fdef.kind, value, tz)
        except ValidationError as exc:
            raise ValidationError(f"{entity.name}.{key}: {exc.message}", path=key,
                                  hint=exc.hint) from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(f"{entity.name}.{key}: {exc}", path=key) from exc
    for fdef in entity.fields.values():
        if fdef.name not in out and fdef.default is not None:
            out[fdef.name] = coerce_value(fdef.kind, fdef.default, tz)
    out.setdefault("tags", [])
    return out
