"""``GET /live``: the live-update stream of a signed-in page (see the package docs).

The response is long-lived: the server must not give it a whole worker.
``dispatchflow serve`` runs a threaded server; under gunicorn use ``gthread``
or ``gevent`` workers (docs/operations.md).
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, Response, request

from ...platform.live.broker import BrokerLost, Subscription
from ..auth.views import runtime, session_actor
from ..problems import problem
from ..tracking import tracked_record
from .stream import Filter, events, one_record, start, visible

bp = Blueprint("live", __name__)


@bp.get("/live")
def live() -> Response:
    """Server-Sent Events: ``change`` events (entity, record_id, kind, row_version, at),
    ``resync`` when missed changes cannot be replayed, heartbeat comments.

    ``Last-Event-ID`` (header, or ``?last_event_id=``) resumes after that event.
    401 without a signed-in session. ``?track=<token>`` (a customer's tracking link,
    no session needed): the changes of that one record only; 404 when the token is
    forged or too old, 410 once the link has ended, as for the tracking page.
    """
    rt = runtime()
    rt.refresh()
    sent: Filter
    token = request.args.get("track")
    if token is not None:
        named = tracked_record(rt, token)
        if isinstance(named, int):
            if named == 404:
                return problem(404, "not-found", "Not found",
                               "this tracking link is not valid or too old; ask for a new one")
            return problem(410, "gone", "Gone",
                           "the order has ended, and its tracking link with it")
        sent = one_record(*named)
    else:
        actor = session_actor()
        if actor is None:
            return problem(401, "unauthorized", "Sign in first",
                           "sign in on /login to receive live updates")
        sent = partial(visible, rt, actor)
    last = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    subscription: Subscription | None
    try:  # before reading the feed: nothing committed in between is missed
        subscription = rt.live.subscribe()
    except BrokerLost:
        subscription = None  # the stream sends what the feed has, then ends: retry later
    cursor, resync = start(rt, last)
    response = Response(events(rt, sent, cursor, resync, subscription),
                        mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events on at once
    return response
