"""How long a customer's tracking link works: until the record's flow has ended, plus grace.

A tracking link names one record. It stops working :data:`~.defaults.TRACKING_LINK_DAYS`
after it was made, and also once every flow instance of the record has reached a
final state (the order was closed or cancelled) and the bundle's grace period
(app.yaml ``portal.tracking_grace``, default :data:`~.defaults.TRACKING_GRACE_HOURS`)
has passed since. Which states end a flow comes from the bundle (``final: true``),
never from state names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from ...dsl.ast import parse_duration
from .. import defaults
from ..store.db import flow_instances, reading

if TYPE_CHECKING:
    from ..assembly import Runtime


def tracking_grace(rt: Runtime) -> timedelta:
    """The bundle's grace period after a record's flow ended (the default if unset)."""
    text = (rt.app.portal or {}).get("tracking_grace")
    if isinstance(text, str) and text:
        return parse_duration(text)
    return timedelta(hours=defaults.TRACKING_GRACE_HOURS)


def flow_ended_at(rt: Runtime, entity: str, record_id: int) -> datetime | None:
    """When the last of the record's flow instances ended; None while one runs or if none."""
    with reading(rt.engine) as conn:
        rows = conn.execute(select(flow_instances.c.ended, flow_instances.c.updated_at)
                            .where(flow_instances.c.entity == entity)
                            .where(flow_instances.c.record_id == record_id)).all()
    if not rows or not all(ended for ended, _ in rows):
        return None
    last = max(at for _, at in rows)
    return last if last.tzinfo else last.replace(tzinfo=UTC)


def link_ended(rt: Runtime, entity: str, record_id: int) -> bool:
    """Whether tracking links to the record have ended (its flow ended longer ago than
    the grace period)."""
    ended = flow_ended_at(rt, entity, record_id)
    return ended is not None and rt.clock() >= ended + tracking_grace(rt)

