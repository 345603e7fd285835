"""One viewer's live-update stream: the change feed, filtered by what the viewer may read.

A change is sent when the viewer may read its record now, through the records
service's row filters (the one authorizer, :meth:`RecordService.readable_versions`),
or when the viewer is the candidate of a pending offer of it (what
``GET /api/v1/offers`` lists, :func:`~dispatchflow.platform.dispatch.explain.offers_for`).
A customer's tracking page has no session: its stream (``GET /live?track=<token>``)
sends the changes of the one record its link names, nothing else (:func:`one_record`).
Every event's id is the feed cursor after it, so a page that reconnects with
``Last-Event-ID`` gets what it missed, or a ``resync`` event when that is too
much or too old (see ``defaults.LIVE_REPLAY_*``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from ...platform import defaults
from ...platform.assembly import Runtime
from ...platform.dispatch import explain
from ...platform.live.broker import BrokerLost, Subscription
from ...platform.live.feed import Change, Cursor, changes_after, head
from ...platform.records.actors import Actor
from ...platform.store.db import reading

log = logging.getLogger(__name__)

Filter = Callable[[list[Change]], Iterator[str]]
"""What one stream sends of a batch of changes: their SSE events, in order."""


def start(rt: Runtime, last_event_id: str | None) -> tuple[Cursor, bool]:
    """Where a stream starts, and whether the page must re-sync first.

    No ``last_event_id``: from now. One the feed can still replay: from it. One
    that is malformed, ahead of the feed, or behind it by more than
    ``defaults.LIVE_REPLAY_MAX_EVENTS`` changes or ``LIVE_REPLAY_MAX_MINUTES``:
    from now, after a re-sync.
    """
    with reading(rt.engine) as conn:
        now_cursor = head(conn)
        if last_event_id is None:
            return now_cursor, False
        cursor = Cursor.parse(last_event_id)
        if cursor is None or cursor.audit > now_cursor.audit or \
                cursor.timeline > now_cursor.timeline:
            return now_cursor, True
        missed, more = changes_after(conn, cursor, defaults.LIVE_REPLAY_MAX_EVENTS)
    oldest = rt.clock() - timedelta(minutes=defaults.LIVE_REPLAY_MAX_MINUTES)
    if more or (missed and missed[0].at < oldest):
        return now_cursor, True
    return cursor, False


def events(rt: Runtime, sent: Filter, cursor: Cursor, resync: bool,
           subscription: Subscription | None) -> Iterator[str]:
    """The stream's text: events after ``cursor`` that ``sent`` lets through (see
    :func:`visible`, :func:`one_record`), heartbeats, and an end (for the browser to
    reconnect) when the broker is lost. Closing the iterator (the client went away)
    closes ``subscription``."""
    try:
        yield f"retry: {defaults.LIVE_RETRY_MS}\n\n"
        if resync:
            yield _event("resync", cursor, {"reason": "missed changes are no longer kept"})
        written = time.monotonic()
        while True:
            more = True
            while more:
                rt.refresh(max_age=defaults.VERSION_CHECK_SECONDS)
                with reading(rt.engine) as conn:
                    changes, more = changes_after(conn, cursor, defaults.LIVE_BATCH)
                if changes:
                    cursor = changes[-1].event_id
                for change in sent(changes):
                    written = time.monotonic()
                    yield change
            if subscription is None:
                return
            try:
                subscription.wait(defaults.LIVE_HEARTBEAT_SECONDS)
            except BrokerLost:
                log.warning("live updates: broker lost; the page reconnects", exc_info=True)
                yield ": broker lost, reconnect\n\n"
                return
            # However busy the feed, a viewer who is sent nothing still gets heartbeats
            # (and a client that went away is noticed).
            if time.monotonic() - written >= defaults.LIVE_HEARTBEAT_SECONDS:
                written = time.monotonic()
                yield ": heartbeat\n\n"
    finally:
        if subscription is not None:
            subscription.close()


def visible(rt: Runtime, actor: Actor, changes: list[Change]) -> Iterator[str]:
    """The SSE events of those ``changes`` the actor may see now, in order (the row
    version of a record only offered to the actor, not readable, is null)."""
    if not changes:
        return
    wanted: dict[str, set[int]] = {}
    for c in changes:
        wanted.setdefault(c.entity, set()).add(c.record_id)
    versions = {entity: rt.records.readable_versions(actor, entity, ids)
                for entity, ids in wanted.items()}
    offered = {(o["entity"], int(o["record_id"])) for o in explain.offers_for(rt, actor)}
    for c in changes:
        version = versions[c.entity].get(c.record_id)
        if version is None and (c.entity, c.record_id) not in offered:
            continue
        yield _event("change", c.event_id, {
            "entity": c.entity, "record_id": c.record_id, "kind": c.kind,
            "row_version": version, "at": c.at.isoformat()})


def one_record(entity: str, record_id: int) -> Filter:
    """The filter of a tracking link's stream: the SSE events of the changes of that one
    record (its row version is not sent: the page re-fetches through the link)."""
    def sent(changes: list[Change]) -> Iterator[str]:
        for c in changes:
            if c.entity == entity and c.record_id == record_id:
                yield _event("change", c.event_id, {
                    "entity": c.entity, "record_id": c.record_id, "kind": c.kind,
                    "row_version": None, "at": c.at.isoformat()})
    return sent


def _event(name: str, cursor: Cursor, data: dict[str, Any]) -> str:
    body = json.dumps({"event_id": str(cursor), **data}, ensure_ascii=False)
    return f"id: {cursor}\nevent: {name}\ndata: {body}\n\n"
