"""Small helpers that make diagnostics read like English: articles, plurals, values.

Values are shown the way the DSL writes them (``2h``, ``5km``, ``true``,
``null``, ``"text"``), never as Python reprs, because the reader is a bundle
author, not a Python programmer.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any


def a(noun: str) -> str:
    """``"integer"`` -> ``"an integer"``; ``"duration"`` -> ``"a duration"``."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``plural(1, "cell")`` -> ``"1 cell"``; ``plural(2, "cell")`` -> ``"2 cells"``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def duration_text(value: timedelta) -> str:
    """A timedelta as the DSL writes it: ``15m``, ``2h``, ``1d``, ``90s``."""
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{sign}{int(seconds // size)}{unit}"
    return f"{sign}{seconds:g}s"


def show_value(value: Any) -> str:
    """A runtime value in DSL notation, for messages and the CLI."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() or abs(value) >= 1e-3 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    return str(value)
