"""The notifications service: plan deliveries inside an event's transaction, send them later.

The event runner calls, for each notification an event triggers (its ``on:`` or
a ``notify`` effect):

1. :func:`plan` in the event's open transaction: evaluates ``when``, resolves the
   recipients, renders the text per recipient language, and inserts one
   ``df_notifications`` row per (channel, recipient). It returns the ids to send
   now; the runner enqueues :func:`deliver` for each after the commit.
2. The scheduler's tick calls :func:`due` and enqueues :func:`deliver` for rows
   whose hold (quiet hours, digest window) or retry wait is over, and for rows
   a crashed worker left ``sending`` past the lease.
3. :func:`deliver` (a job, idempotent) claims one row with a conditional UPDATE,
   sends it outside any transaction, logs the attempt, and records the outcome:
   ``sent``; ``pending`` again with ``next_attempt_at`` after a retryable failure
   (waits ``defaults.NOTIFY_RETRY_BACKOFF``); ``failed`` after a permanent one or
   ``defaults.NOTIFY_MAX_ATTEMPTS`` attempts; ``unconfigured`` when the channel
   lacks its configuration (see :mod:`.unconfigured`).

Planning rules, all decided from the event time ``now`` (never the wall clock),
so replaying an event plans the same rows:

* **Quiet hours**: with ``quiet_hours: <calendar>``, a message planned outside
  the calendar's working time is ``held`` until the next working instant,
  unless its severity is ``critical``.
* **Dedupe**: while a message of a notification about a record to a recipient on
  a channel is pending, held, sending or in a held digest, the same message is
  not planned again (the unique ``active_key`` enforces it across workers).
* **Digest**: with ``digest_window``, see :mod:`.digest`; critical messages are
  never digested.
* A template that fails to render plans a ``failed`` row carrying the error (the
  event itself goes on); a recipient without an address for the channel plans a
  ``suppressed`` row, so the record's history shows who was not told and why.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from ...dsl.codegen import ref_id
from ...dsl.compiler import App
from ...dsl.items import USER_ENTITY
from ...forms.messages import label_text
from .. import defaults
from ..records.views import RecordBinder
from ..store.db import (
    DIGESTED,
    FAILED,
    HELD,
    PENDING,
    SENDING,
    SENT,
    SUPPRESSED,
    UNCONFIGURED,
    attempts,
    notifications,
)
from ..store.storage import from_row
from .channels import Message, Transport, build_transport
from .digest import compose
from .errors import DeliveryError, NotificationError, TemplateRenderError
from .inbox import acknowledge, inbox, mark_read, unread_count
from .recipients import Recipient, RecipientResolver, Resolve
from .spec import NotificationSpec, spec_for
from .templates import RenderedMessage, render_message
from .unconfigured import report_once

if TYPE_CHECKING:
    from ..assembly import Runtime

__all__ = ["notifications_on", "plan", "due", "deliver", "deliveries_for", "inbox",
           "acknowledge", "mark_read", "unread_count"]

log = logging.getLogger(__name__)

N = notifications


def notifications_on(app: App, entity: str, event: str) -> list[str]:
    """Names of the notifications whose ``on:`` is ``entity.event`` (file order).

    ``event`` may be the bare event name (``escalated``) or the full one.
    """
    full = event if "." in event else f"{entity}.{event}"
    return [name for name, item in app.notifications.items() if item.data.get("on") == full]


# ------------------------------------------------------------------ planning


@dataclass(frozen=True)
class _Target:
    """Where one row goes: a channel and one recipient (or the webhook)."""

    channel: str
    recipient: str
    user_id: str | None
    address: str | None
    locale: str
    name: str
    suppressed: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def plan(conn: Connection, runtime: Runtime, name: str, record: Mapping[str, Any],
         now: datetime, cause: str) -> list[int]:
    """Plan the deliveries of notification ``name`` about ``record``; ids to send now.

    Runs in the caller's transaction (``conn``). ``record`` is a runtime record
    (:func:`~dispatchflow.platform.store.storage.from_row`; references as ids or
    nested dicts) of the notification's entity; ``now`` the aware event time;
    ``cause`` what triggered it (an event id or a rule name). A false ``when``
    plans nothing. Raises NotificationError for an unknown notification or a
    record without an id; template errors become ``failed`` rows instead.
    """
    if now.tzinfo is None:
        raise NotificationError("plan() needs an aware datetime for now")
    app = runtime.app
    spec = spec_for(app, name)
    record_id = ref_id(record.get("id"))
    if record_id is None:
        raise NotificationError(f"notification '{name}': the record has no id")
    resolve = _resolver(conn, runtime)
    view = RecordBinder({**app.entities, USER_ENTITY: app.user}, resolve).bind(
        app.entities[spec.entity], record)
    if spec.when is not None and not spec.when(view, now):
        return []
    people = RecipientResolver(conn, app, runtime.authz, resolve, now).resolve_all(
        spec.to, spec.entity, record, view, spec.fields)
    rendered: dict[str, RenderedMessage | TemplateRenderError] = {}

    def render(locale: str) -> RenderedMessage | TemplateRenderError:
        if locale not in rendered:
            try:
                rendered[locale] = render_message(app, name, record, locale=locale, now=now,
                                                  tz=runtime.tz, resolve=resolve)
            except TemplateRenderError as exc:
                log.warning("%s", exc)
                rendered[locale] = exc
        return rendered[locale]

    planner = _Planner(conn, app, spec, int(record_id), _utc(now), cause,
                       runtime.version_number)
    for channel in spec.channels:
        for target in _targets(channel, spec, people, app.default_locale):
            planner.add(target, render(target.locale))
    return planner.send_now


def _targets(channel: str, spec: NotificationSpec, people: list[Recipient],
             default_locale: str) -> list[_Target]:
    """One target per recipient of ``channel`` (one in all for the webhook)."""
    if channel == "webhook":
        env = spec.webhook_env or ""
        listed = [{"user_id": p.user_id, "name": p.name, "locale": p.locale} for p in people
                  if p.user_id or not p.refused]
        return [_Target(channel, f"webhook:{env}", None, env, default_locale, env,
                        payload={"recipients": listed})]
    out = []
    for p in people:
        if channel == "email":
            out.append(_Target(channel, p.key, p.user_id, p.email, p.locale, p.name,
                               None if p.email else p.refused or f"user '{p.user_id}' has no "
                               "e-mail address (user attribute 'email')"))
        elif p.user_id:
            out.append(_Target(channel, p.user_id, p.user_id, None, p.locale, p.name))
    return out


class _Planner:
    """Inserts the rows of one plan() call (quiet hours, dedupe, digest)."""

    def __init__(self, conn: Connection, app: App, spec: NotificationSpec, record_id: int,
                 at: datetime, cause: str, version: int | None) -> None:
        self.conn, self.app, self.spec, self.at = conn, app, spec, at
        self.record_id, self.cause, self.version = record_id, cause, version
        self.send_now: list[int] = []

    def add(self, target: _Target, message: RenderedMessage | TemplateRenderError) -> None:
        spec = self.spec
        label = label_text(spec.label, target.locale, spec.name, self.app.default_locale)
        key = _dedupe_key(spec.name, spec.entity, self.record_id, target.channel,
                          target.recipient)
        values: dict[str, Any] = dict(
            notification=spec.name, entity=spec.entity, record_id=self.record_id,
            channel=target.channel, recipient=target.recipient, user_id=target.user_id,
            address=target.address, locale=target.locale, severity=spec.severity,
            created_at=self.at, cause=(self.cause or "")[:300], dedupe_key=key, attempts=0,
            digest_count=1, payload={"label": label, "name": target.name, **target.payload},
            version_number=self.version)
        if isinstance(message, TemplateRenderError):
            _insert(self.conn, {**values, "subject": label, "body_text": "", "body_html": "",
                                "status": FAILED, "last_error": str(message)})
            return
        values.update(subject=message.subject, body_text=message.text, body_html=message.html)
        if target.suppressed:
            _insert(self.conn, {**values, "status": SUPPRESSED, "last_error": target.suppressed})
            return
        if spec.digest_window is not None and not spec.critical:
            self._digest(values, target, key)
            return
        hold = self._quiet_until(self.at)
        row_id = _insert(self.conn, {**values, "active_key": key,
                                     "status": HELD if hold else PENDING, "not_before": hold})
        if row_id is not None and hold is None:
            self.send_now.append(row_id)

    def _quiet_until(self, at: datetime) -> datetime | None:
        """The end of the quiet hours ``at`` falls in, or None (never for critical)."""
        calendar = self.spec.quiet_hours
        if calendar is None or self.spec.critical or calendar.is_working(at):
            return None
        return _utc(calendar.next_working_instant(at))

    def _digest(self, values: dict[str, Any], target: _Target, key: str) -> None:
        assert self.spec.digest_window is not None
        window_end = self.at + self.spec.digest_window
        window_end = self._quiet_until(window_end) or window_end
        head = self.conn.execute(
            select(N.c.id).where(N.c.notification == self.spec.name,
                                 N.c.channel == target.channel,
                                 N.c.recipient == target.recipient, N.c.status == HELD,
                                 N.c.digest_parent.is_(None), N.c.not_before > self.at)
            .order_by(N.c.id).limit(1)).scalar()
        if head is None:
            _insert(self.conn, {**values, "active_key": key, "status": HELD,
                                "not_before": window_end})
            return
        child = _insert(self.conn, {**values, "active_key": key, "status": DIGESTED,
                                    "digest_parent": head})
        if child is None:
            return  # the same message is already waiting
        bumped = self.conn.execute(update(N).where(N.c.id == head, N.c.status == HELD)
                                   .values(digest_count=N.c.digest_count + 1)).rowcount
        if not bumped:  # the head was claimed meanwhile: start a digest of our own
            self.conn.execute(update(N).where(N.c.id == child).values(
                status=HELD, digest_parent=None, not_before=window_end))


def _dedupe_key(*parts: Any) -> str:
    key = "|".join(str(p) for p in parts)
    if len(key) <= 380:
        return key
    return key[:300] + "#" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _insert(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert a delivery row; None when a live duplicate (same active_key) exists."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        found = conn.execute(_insert_unless_live(dialect), values).scalar()
        return None if found is None else int(found)
    key = values.get("active_key")
    if key is not None and conn.execute(select(N.c.id).where(N.c.active_key == key)).first():
        return None
    inserted = conn.execute(N.insert().values(**values)).inserted_primary_key
    return None if inserted is None else int(inserted[0])


@lru_cache(maxsize=2)
def _insert_unless_live(dialect: str) -> Any:
    """INSERT of a delivery that does nothing on a live duplicate, returning the id (built
    once: the values are the execution's parameters)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(N).on_conflict_do_nothing().returning(N.c.id)


def _resolver(conn: Connection, runtime: Runtime) -> Resolve:
    """``resolve(entity, id)``: a live record of the active version, or None (cached)."""
    cache: dict[tuple[str, Any], dict[str, Any] | None] = {}

    def resolve(entity: str, record_id: Any) -> dict[str, Any] | None:
        key = (entity, record_id)
        if key not in cache:
            table = runtime.tables.get(entity)
            found = None
            try:
                rid = int(record_id)
            except (TypeError, ValueError):
                table = None
            if table is not None:
                row = conn.execute(select(table).where(table.c.id == rid)
                                   .where(table.c.deleted_at.is_(None))).mappings().first()
                if row is not None:
                    found = from_row(runtime.app.entities[entity], dict(row), runtime.tz)
            cache[key] = found
        return cache[key]
    return resolve


# ------------------------------------------------------------------ sending


def _claimable(now: datetime) -> Any:
    lease_start = now - timedelta(seconds=defaults.NOTIFY_SEND_LEASE_SECONDS)
    return or_(
        and_(N.c.status.in_((PENDING, HELD)),
             or_(N.c.not_before.is_(None), N.c.not_before <= now),
             or_(N.c.next_attempt_at.is_(None), N.c.next_attempt_at <= now)),
        and_(N.c.status == SENDING, N.c.claimed_at <= lease_start))


def due(conn: Connection, now: datetime, limit: int = defaults.NOTIFY_DUE_BATCH) -> list[int]:
    """Ids of deliveries to send at ``now``: pending or held ones whose wait is over,
    and ``sending`` ones whose lease expired. Oldest first, at most ``limit``."""
    at = _utc(now)
    return [int(i) for i in conn.execute(select(N.c.id).where(_claimable(at))
                                         .order_by(N.c.id).limit(limit)).scalars()]


def deliver(engine: Engine, delivery_id: int, now: datetime,
            transports: Mapping[str, Transport] | None = None) -> str:
    """Send delivery ``delivery_id``; returns its status afterwards.

    Idempotent: a row that is not due (sent, failed, suppressed, held, waiting
    for a retry, or claimed by another worker) is left alone and its status
    returned. ``transports`` overrides the registry's (tests, custom setups).
    Raises NotificationError when there is no such row.
    """
    at = _utc(now)
    token = secrets.token_hex(8)
    with engine.begin() as conn:
        claimed = conn.execute(update(N).where(N.c.id == delivery_id).where(_claimable(at))
                               .values(status=SENDING, claimed_at=at, claim_token=token,
                                       attempts=N.c.attempts + 1)
                               .returning(*N.c)).mappings().first()
        if claimed is None:
            status = conn.execute(select(N.c.status).where(N.c.id == delivery_id)).scalar()
            if status is None:
                raise NotificationError(f"no notification delivery {delivery_id}")
            return str(status)
        row = dict(claimed)
        # A digest's head counts the messages attached to it while it was held (none
        # can attach once it is claimed), so a lone message needs no look.
        attached = [] if (row["digest_count"] or 1) <= 1 else [dict(r) for r in conn.execute(
            select(N).where(N.c.digest_parent == delivery_id).where(N.c.status == DIGESTED)
            .order_by(N.c.id)).mappings()]
    payload = dict(row["payload"] or {})
    composed = compose(row, attached, str(payload.get("label") or row["notification"]))
    message = Message(
        delivery_id=int(row["id"]), notification=row["notification"],
        label=str(payload.get("label") or row["notification"]), entity=row["entity"],
        record_id=int(row["record_id"]), channel=row["channel"], recipient=row["recipient"],
        recipient_name=str(payload.get("name") or ""), user_id=row["user_id"],
        address=row["address"], locale=row["locale"], subject=composed.subject,
        text=composed.text, html=composed.html, severity=row["severity"], cause=row["cause"],
        created_at=_utc(row["created_at"]), items=composed.items, payload=payload)
    ok, retryable, status_code, detail, unconfigured = _send(engine, message, at, transports)
    number = int(row["attempts"])
    values: dict[str, Any] = {"claim_token": None}
    if unconfigured:
        # Held, not an attempt: once configured, it gets all its attempts.
        report_once(unconfigured)
        values.update(status=UNCONFIGURED, attempts=number - 1, last_error=detail)
        with engine.begin() as conn:
            done = conn.execute(update(N).where(N.c.id == delivery_id)
                                .where(N.c.claim_token == token).values(**values)).rowcount
            return UNCONFIGURED if done else str(conn.execute(
                select(N.c.status).where(N.c.id == delivery_id)).scalar_one())
    if ok:
        values.update(status=SENT, sent_at=at, active_key=None, last_error=None,
                      digest_of=[int(r["id"]) for r in attached] or None)
    elif retryable and number < defaults.NOTIFY_MAX_ATTEMPTS:
        backoff = defaults.NOTIFY_RETRY_BACKOFF
        wait = backoff[min(number - 1, len(backoff) - 1)]
        values.update(status=PENDING, next_attempt_at=at + timedelta(seconds=wait),
                      last_error=detail)
    else:
        values.update(status=FAILED, active_key=None, last_error=detail)
    with engine.begin() as conn:
        conn.execute(attempts.insert().values(delivery_id=delivery_id, attempt=number, at=at,
                                              ok=ok, status_code=status_code,
                                              detail=detail[:2000]))
        done = conn.execute(update(N).where(N.c.id == delivery_id)
                            .where(N.c.claim_token == token).values(**values)).rowcount
        if done and attached and values["status"] in (SENT, FAILED):
            conn.execute(update(N).where(N.c.digest_parent == delivery_id)
                         .values(active_key=None))
        if done:
            return str(values["status"])
        final = conn.execute(select(N.c.status).where(N.c.id == delivery_id)).scalar_one()
    return str(final)


class _Outcome(NamedTuple):
    ok: bool
    retryable: bool
    status: int | None
    detail: str
    unconfigured: str = ""  # what the channel lacks (the error's message), if that is it


def _send(engine: Engine, message: Message, at: datetime,
          transports: Mapping[str, Transport] | None) -> _Outcome:
    """The outcome of one hand-over (an unconfigured channel is reported once, not here)."""
    try:
        transport = (transports or {}).get(message.channel) or \
            build_transport(message.channel, engine)
        receipt = transport.send(message, at)
    except DeliveryError as exc:
        if not exc.unconfigured:
            log.warning("notification delivery %s (%s) failed: %s", message.delivery_id,
                        message.channel, exc)
        return _Outcome(False, exc.retryable, exc.status, str(exc),
                        exc.message if exc.unconfigured else "")
    except Exception as exc:  # noqa: BLE001 - a transport bug must not lose the message
        log.exception("notification delivery %s (%s) crashed", message.delivery_id,
                      message.channel)
        return _Outcome(False, True, None, f"{type(exc).__name__}: {exc}")
    return _Outcome(True, False, receipt.status, receipt.detail)


def deliveries_for(conn: Connection, entity: str, record_id: int) -> list[dict[str, Any]]:
    """The deliveries planned about one record, oldest first (for its timeline)."""
    rows = conn.execute(select(N.c.id, N.c.notification, N.c.channel, N.c.recipient,
                               N.c.status, N.c.severity, N.c.subject, N.c.created_at,
                               N.c.sent_at, N.c.not_before, N.c.attempts, N.c.last_error,
                               N.c.cause, N.c.digest_parent)
                        .where(N.c.entity == entity, N.c.record_id == record_id)
                        .order_by(N.c.id)).mappings()
    return [{k: (_utc(v) if isinstance(v, datetime) else v) for k, v in r.items()}
            for r in rows]


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
