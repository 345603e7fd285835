"""Runtime record values <-> JSON (API bodies, audit rows, outbox payloads)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...dsl.model import EntityDef
from ...dsl.wording import duration_text


def json_value(value: Any) -> Any:
    """A runtime value as JSON: ISO dates and datetimes, durations as ``"15m"``."""
    if isinstance(value, datetime):
        return _rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def _rfc3339(value: datetime) -> str:
    """ISO 8601 text that is also valid RFC 3339 (what ``format: date-time`` means).

    Zones carry a local mean time before standard time (Asia/Shanghai: +08:05:43
    before 1901), an offset with seconds that RFC 3339 cannot write: such a time
    is given in UTC instead — the same instant.
    """
    offset = value.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        value = value.astimezone(UTC)
    return value.isoformat()


def json_record(entity: EntityDef, record: dict[str, Any],
                fields: frozenset[str] | None = None) -> dict[str, Any]:
    """A record as JSON, limited to ``fields`` when given (plus ``row_version``)."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if fields is not None and name not in fields and name != "row_version":
            continue
        if name in entity.fields or name == "row_version":
            out[name] = json_value(value)
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for fields whose value differs, as JSON."""
    out = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            out[name] = [json_value(old), json_value(new)]
    return out
