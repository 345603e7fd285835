"""Customer tracking links: the signed token naming one record, and whether it still works.

One place for the rules, used by the tracking page and its status fragment
(``web/portal``) and by the tracking page's live stream (``GET /live?track=``,
``web/live``): same serializer and salt, same age limit
(:data:`~..platform.defaults.TRACKING_LINK_DAYS`), same end after the record's
flow ended plus the bundle's grace (:mod:`~..platform.records.tracking`).
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..platform import defaults
from ..platform.assembly import Runtime
from ..platform.records.tracking import link_ended
from .auth.views import runtime


def _tracker() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.secret_key, salt="dispatchflow-track")


def tracking_token(entity: str, record_id: int) -> str:
    """A signed, expiring token naming one record (for customers without accounts)."""
    return _tracker().dumps([entity, record_id])


def read_tracking_token(token: str) -> tuple[str, int] | None:
    """The record a tracking token names, or None when it is forged or too old."""
    try:
        entity, record_id = _tracker().loads(token, max_age=defaults.TRACKING_LINK_DAYS * 86400)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(entity, str) or not isinstance(record_id, int):
        return None
    return entity, record_id


def tracked_record(rt: Runtime, token: str) -> tuple[str, int] | int:
    """The record a tracking link may show now, or the HTTP status that refuses it:
    404 when the token is forged, too old or names an entity the active version
    lacks; 410 when the record's flow ended longer ago than the grace period."""
    named = read_tracking_token(token)
    if named is None or named[0] not in rt.app.entities:
        return 404
    if link_ended(rt, *named):
        return 410
    return named
