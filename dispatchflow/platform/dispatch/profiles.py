"""Candidate profiles from recent work: 30-day rating and average handling time.

:func:`recent_stats` reads the dispatched records a candidate completed in the
last :data:`defaults.PROFILE_WINDOW_DAYS` days (the record's assignee field
pointing at them, ``completed_at`` inside the window) and returns, for the
pool entity's profile fields:

- ``rating_30d``: the share of rated records rated at least
  :data:`defaults.GOOD_RATING` (None while nothing was rated);
- ``avg_handling_minutes``: the mean of ``completed_at - accepted_at``, in minutes.

The record fields read (``completed_at``, ``accepted_at``, ``rating``) are the
conventional names; a dispatched entity without them simply yields nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .. import defaults

if TYPE_CHECKING:
    from ..runtime.step import Step


def recent_stats(step: Step, assignee_field: str, candidate: int) -> dict[str, Any]:
    """Profile values of ``candidate`` from its recent records (see module docs)."""
    fields = step.rt.app.entities[step.entity].fields
    table = step.rt.tables[step.entity]
    if "completed_at" not in fields:
        return {}
    since = step.utc - timedelta(days=defaults.PROFILE_WINDOW_DAYS)
    columns = [table.c[name] for name in ("completed_at", "accepted_at", "rating")
               if name in fields]
    rows = step.conn.execute(select(*columns).where(table.c[assignee_field] == candidate)
                             .where(table.c.deleted_at.is_(None))
                             .where(table.c.completed_at >= since)).mappings().all()
    out: dict[str, Any] = {}
    ratings = [r["rating"] for r in rows if r.get("rating") is not None]
    if "rating" in fields and ratings:
        good = sum(1 for r in ratings if r >= defaults.GOOD_RATING)
        out["rating_30d"] = round(good / len(ratings), 4)
    spans = [(r["completed_at"] - r["accepted_at"]).total_seconds() / 60 for r in rows
             if r.get("accepted_at") is not None and r.get("completed_at") is not None]
    if spans:
        out["avg_handling_minutes"] = round(sum(spans) / len(spans), 1)
    return out
