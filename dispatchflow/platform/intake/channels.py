"""Intake channels (渠道): signed webhook and e-mail messages become records.

A channel (``channels/*.yaml``) names an entity, a field mapping from the
sender's keys (``设备编号``) to fields (``asset_code``) with optional DSL
transforms, and defaults. Per app version each channel is compiled once into a
:class:`Channel` (transforms become Python functions of ``value`` and ``now``);
each delivery then runs:

1. **authenticate** -- a signature header ``t=<unix>,v1=<hex>``: HMAC-SHA256 of
   the time, the ``Idempotency-Key`` and the raw body under the secret held in
   the environment variable named by ``secret_env``, within a time tolerance
   (:mod:`.channel_signatures`). A channel whose secret is not configured refuses
   every message (:class:`ChannelNotConfigured`): intake without a secret would
   let anyone create records.
2. **parse** -- a webhook body is a JSON object whose top-level keys are the
   external names; an e-mail (:func:`parse_email`) yields ``subject``,
   ``body``, ``from`` and the ``键: 值`` lines of its body whose key is in the
   mapping, plus its attachments (kept under the external name
   ``attachments`` when the mapping maps it to an attachment field).
3. **map** (:func:`map_payload`) -- external keys -> fields, transforms
   applied, ``defaults`` filling fields nobody sent; keys the mapping does not
   know are left out and reported as ``skipped`` (returned to the sender and
   logged on ``dispatchflow.channels``).
4. **deduplicate** -- a message whose idempotency key (the sender's key; for an
   e-mail without one its ``Message-ID``) was stored before, or whose exact bytes
   arrived within the signature tolerance, answers with the record already made.
5. **create** -- through :meth:`RecordService.create` as the channel's system
   actor (``channel:<name>``), so the entity's validation, row filters, audit
   row and outbox event apply exactly as for the API. Invalid messages raise
   :class:`~dispatchflow.errors.ValidationError` and write nothing (stored
   attachments are removed again).

Text values (every e-mail value, and strings sent to non-text fields of a
webhook) follow the CSV import conventions (:func:`.csv_import.text_value`):
``31.23,121.47`` for a location, ``是``/``否`` for booleans, an id for a
reference.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from ...dsl.codegen import compile_expression
from ...dsl.compiler import App
from ...dsl.model import FieldDef
from ...errors import NotFoundError, ValidationError
from ...forms.messages import field_message, label_text
from ...forms.schema import version_cached
from ...forms.submission import accepts, effective_type
from ...forms.validation import FieldError, validate_payload
from .. import defaults
from ..records.actors import Actor
from ..records.files import store_file
from ..store.db import deliveries, files
from ..store.jsonvalues import json_value
from .csv_import import text_value
from .signatures import ChannelError, SignatureInvalid, check_key, verify

if TYPE_CHECKING:
    from ..assembly import Runtime

log = logging.getLogger("dispatchflow.channels")

DEFAULT_SIGNATURE_HEADER = "X-Dispatchflow-Signature"

#: External names an e-mail always provides (besides the ``键: 值`` lines of its body).
EMAIL_KEYS = ("subject", "body", "from", "attachments")

# "键: 值" / "键：值" lines of an e-mail body (full-width colon too).
_KEY_LINE = re.compile(r"^[ \t]*([^:：\r\n]{1,60}?)[ \t]*[:：][ \t]*(.*?)[ \t]*$", re.M)


# ------------------------------------------------------------------ errors


class UnknownChannel(NotFoundError):
    """No channel of that name and kind in the active app version."""


class ChannelNotConfigured(ChannelError):
    """The channel's HMAC secret is not available; it refuses every message."""


class MessageTooLarge(ChannelError):
    """The body (or an e-mail's text) exceeds the channel's limit."""


class BadMessage(ChannelError):
    """The body is not a JSON object / not an RFC 822 message."""


# ------------------------------------------------------------------ compiled channels


@dataclass(frozen=True)
class MappingRule:
    """One mapping entry: external key -> field, with an optional compiled transform."""

    external: str
    field: str
    transform: Callable[[Any, datetime], Any] | None = None


@dataclass(frozen=True)
class Channel:
    """A channel of one app version, ready to run (see module docs)."""

    name: str
    kind: str  # "webhook" | "email"
    entity: str
    file: str
    secret_env: str | None
    signature_header: str
    max_body_kb: int | None
    rules: tuple[MappingRule, ...]
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        """The system actor that creates this channel's records."""
        return Actor(user_id=f"channel:{self.name}", name=self.name, channel=self.name,
                     is_system=True)

    @property
    def max_body_bytes(self) -> int:
        """Largest accepted webhook body (or e-mail text), in bytes."""
        return (self.max_body_kb or defaults.MAX_JSON_KB) * 1024

    def secret(self, environ: Mapping[str, str] | None = None) -> bytes:
        """The HMAC secret; raises ChannelNotConfigured when there is none."""
        env = os.environ if environ is None else environ
        if not self.secret_env:
            raise ChannelNotConfigured(
                f"channel '{self.name}' has no secret_env, so it refuses every message",
                file=self.file,
                hint=f"add 'secret_env: {self.name.upper()}_CHANNEL_SECRET' to {self.file} "
                     "and set that variable where dispatchflow runs")
        value = env.get(self.secret_env, "")
        if not value:
            raise ChannelNotConfigured(
                f"channel secret not configured: set {self.secret_env}",
                hint=f"export {self.secret_env}=<the secret shared with the sender> and restart")
        return value.encode("utf-8")

    def attachment_rule(self) -> MappingRule | None:
        """The mapping entry for an e-mail's ``attachments``, if any."""
        return next((r for r in self.rules if r.external == "attachments"), None)


def channel(app: App, name: str, kind: str | None = None) -> Channel:
    """The compiled channel ``name`` of ``app`` (compiled once per app version).

    Raises UnknownChannel when there is none (or it is not of ``kind``).
    """
    compiled = version_cached(app, ("channels",), lambda: {
        n: _compile(item) for n, item in app.channels.items()})
    found = compiled.get(name)
    if found is None or (kind is not None and found.kind != kind):
        what = f"{kind} channel" if kind else "channel"
        raise UnknownChannel(f"no {what} '{name}'",
                             hint="channels: " + (", ".join(
                                 f"{c.name} ({c.kind})" for c in compiled.values()) or "none"))
    return found


def _compile(item: Any) -> Channel:
    data = item.data
    rules = []
    for key, target in data["mapping"].items():
        fname = target["field"] if isinstance(target, dict) else target
        node = item.exprs.get(("mapping", key, "transform"))
        fn = compile_expression(node, ["value"], f"<channel {item.name}: {key}>") \
            if node is not None else None
        rules.append(MappingRule(key, fname, fn))
    return Channel(name=item.name, kind=data["kind"], entity=data["entity"], file=item.file,
                   secret_env=data.get("secret_env"),
                   signature_header=data.get("signature_header") or DEFAULT_SIGNATURE_HEADER,
                   max_body_kb=data.get("max_body_kb"), rules=tuple(rules),
                   defaults=dict(data.get("defaults") or {}))


# ------------------------------------------------------------------ signatures


def authenticate(ch: Channel, body: bytes, header_value: str | None, *, key: str,
                 now: datetime, tolerance: float,
                 environ: Mapping[str, str] | None = None) -> None:
    """Raise ChannelNotConfigured or SignatureInvalid unless ``body``, sent with the
    idempotency key ``key`` (``""``: none), is signed correctly within ``tolerance``
    seconds of ``now`` (see :mod:`.channel_signatures`)."""
    secret = ch.secret(environ)
    if not header_value:
        raise SignatureInvalid(f"missing {ch.signature_header} header",
                               hint=f"send {ch.signature_header}: t=<unix time>,v1=<hex "
                                    "HMAC-SHA256 of '<t>.<Idempotency-Key>.<raw body>'>")
    verify(secret, body, header_value, key=key, now=now.timestamp(), tolerance=tolerance,
           name=ch.signature_header)


# ------------------------------------------------------------------ mapping


class Mapped(NamedTuple):
    """The outcome of :func:`map_payload`."""

    payload: dict[str, Any]
    errors: list[FieldError]
    skipped: list[str]


def map_payload(app: App, channel_name: str, external: Mapping[str, Any],
                now: datetime) -> Mapped:
    """Turn a message's ``external`` values into a record payload (JSON values).

    Mapped keys are converted (transform, or text conventions for text sent to
    non-text fields); the first mapping entry with a non-null value wins a
    field; ``defaults`` fill the fields left empty. Unmapped keys end up in
    ``skipped``. A transform that fails gives a field error (code
    ``transform``). Raises UnknownChannel.
    """
    ch = channel(app, channel_name)
    entity = app.entities[ch.entity]
    locale = app.default_locale
    known = {r.external for r in ch.rules}
    skipped = [key for key in external if key not in known]
    payload: dict[str, Any] = {}
    errors: list[FieldError] = []
    for rule in ch.rules:
        if rule.external not in external or rule.field in payload:
            continue
        fdef = entity.fields.get(rule.field)
        raw = external[rule.external]
        try:
            value = _convert(rule, fdef, raw, now, app.timezone)
        except Exception as exc:  # noqa: BLE001 - any failure of author code is a field error
            log.info("channel %s: transform of %r failed: %s", ch.name, rule.external, exc)
            label = label_text(fdef.label if fdef else None, locale, rule.field,
                               app.default_locale)
            errors.append(FieldError(rule.field, "transform",
                                     field_message("invalid", locale, label=label)))
            continue
        if value is not None:
            payload[rule.field] = value
    for name, value in ch.defaults.items():
        if payload.get(name) is None:
            payload[name] = value
    return Mapped(payload, errors, skipped)


def _convert(rule: MappingRule, fdef: FieldDef | None, raw: Any, now: datetime, tz: str) -> Any:
    if rule.transform is not None:
        return json_value(rule.transform(_as_text(raw), now))
    if fdef is None:
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        return None if text == "" else text_value(fdef, text, tz)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and \
            fdef.kind in ("string", "text", "enum"):
        return str(raw)
    return raw


def _as_text(raw: Any) -> str | None:
    """A transform's ``value``: the incoming value as text (None stays None)."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    return json.dumps(raw, ensure_ascii=False)


# ------------------------------------------------------------------ e-mail


@dataclass(frozen=True)
class Attachment:
    """A file attached to an e-mail (not stored yet)."""

    filename: str
    content_type: str
    data: bytes


def parse_email(raw: bytes, app: App, channel_name: str) -> tuple[dict[str, Any],
                                                                     list[Attachment]]:
    """The external values and attachments of an RFC 822 message for channel ``channel_name``.

    External values: ``subject``, ``body`` (text/plain preferred, else the HTML
    part without tags; the ``键: 值`` lines taken as values are removed from
    it), ``from`` (the sender's address) and every ``键: 值`` line whose key is
    in the mapping (first one wins). Raises BadMessage when ``raw`` is not a
    message, MessageTooLarge when its text exceeds the channel's max_body_kb.
    """
    ch = channel(app, channel_name, "email")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - the stdlib parser is lenient; be safe anyway
        raise BadMessage("the body is not an RFC 822 message") from exc
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise BadMessage("the body is not an RFC 822 message",
                         hint="send the raw message (headers, blank line, body) as "
                              "Content-Type: message/rfc822")
    subject = _header(msg, "subject")
    sender = _sender(msg)
    body = _body_text(msg)
    if len(subject.encode()) + len(body.encode()) > ch.max_body_bytes:
        raise MessageTooLarge(f"the message text is larger than {ch.max_body_bytes // 1024} KB",
                              hint=f"max_body_kb of {ch.file}")
    external: dict[str, Any] = {}
    if subject:
        external["subject"] = subject
    wanted = {r.external for r in ch.rules} - set(EMAIL_KEYS)
    kept_lines: list[str] = []
    for line in body.splitlines():
        m = _KEY_LINE.match(line)
        key = m.group(1).strip() if m else None
        if m and key in wanted and key not in external:
            external[key] = m.group(2)
            continue
        kept_lines.append(line)
    text = "\n".join(kept_lines).strip()
    if text:
        external["body"] = text
    if sender:
        external["from"] = sender
    attachments = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        filename = part.get_filename() or "attachment"
        attachments.append(Attachment(filename, effective_type(data, part.get_content_type(),
                                                               filename), data))
    return external, attachments


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header reads as absent
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _sender(msg: EmailMessage) -> str:
    try:
        header = msg.get("from")
        addresses = getattr(header, "addresses", ())
    except Exception:  # noqa: BLE001
        return ""
    return addresses[0].addr_spec if addresses else _header(msg, "from")


def _body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, KeyError):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(text, str):
        return ""
    if part.get_content_subtype() == "html":
        text = html_text(text)
    return text.replace("\r\n", "\n").strip()


class _TextOnly(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The text of an HTML fragment: tags dropped, block ends as line breaks."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


# ------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class Delivery:
    """A message that became a record: the record (as the channel may see it) and what
    the mapping left out."""

    record: dict[str, Any]
    skipped: list[str]
    duplicate: bool = False  # the same message was delivered before: nothing new stored


@dataclass(frozen=True)
class DeliveryKeys:
    """How a message is recognised when it comes again: the sender's idempotency key
    (``k:<key>``, for ever) and the digest of its bytes (``sha256:<hex>``, within the
    signature tolerance)."""

    key: str | None
    digest: str


def delivery_keys(given: str | None, message: bytes) -> DeliveryKeys:
    """The keys of a message: the sender's key (if any) and a digest of the bytes."""
    key = "k:" + given.strip()[:190] if given and given.strip() else None
    return DeliveryKeys(key, "sha256:" + hashlib.sha256(message).hexdigest())


def _window_start(rt: Runtime) -> datetime:
    """Oldest time a same-bytes message still counts as a repeat (the signature tolerance)."""
    return rt.clock() - timedelta(seconds=rt.settings.channel_signature_tolerance)


def _previous(rt: Runtime, ch: Channel, keys: DeliveryKeys) -> Delivery | None:
    c = deliveries.c
    same_bytes = and_(c.key == keys.digest, c.created_at >= _window_start(rt))
    match = or_(c.key == keys.key, same_bytes) if keys.key else same_bytes
    with rt.engine.connect() as conn:
        row = conn.execute(select(c.record_id, c.key).where(c.channel == ch.name)
                           .where(match).limit(1)).first()
    if row is None:
        return None
    log.info("channel %s: duplicate delivery %s -> %s %s", ch.name, row[1], ch.entity, row[0])
    return Delivery({"id": row[0]}, [], duplicate=True)


def _authenticate(rt: Runtime, ch: Channel, body: bytes, signature: str | None,
                  key: str | None) -> None:
    authenticate(ch, body, signature, key=check_key(key), now=rt.clock(),
                 tolerance=rt.settings.channel_signature_tolerance)


def deliver_webhook(rt: Runtime, channel_name: str, body: bytes,
                    signature: str | None, key: str | None = None) -> Delivery:
    """Authenticate, parse, map and store one webhook body; see module docs.

    ``signature`` is the channel's signature header, ``key`` the ``Idempotency-Key``
    header (both as sent). Raises UnknownChannel, ChannelNotConfigured,
    MessageTooLarge, BadKey, SignatureInvalid, BadMessage, ValidationError (nothing
    written).
    """
    ch = channel(rt.app, channel_name, "webhook")
    ch.secret()
    if len(body) > ch.max_body_bytes:
        raise MessageTooLarge(f"the body is larger than {ch.max_body_bytes // 1024} KB",
                              hint=f"max_body_kb of {ch.file}")
    _authenticate(rt, ch, body, signature, key)
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage("the body is not valid JSON",
                         hint="send a UTF-8 JSON object, e.g. {\"设备编号\": \"AC-1\"}") from exc
    if not isinstance(data, dict):
        raise BadMessage("the body must be a JSON object",
                         hint="send {\"key\": value, ...} with the sender's field names")
    keys = delivery_keys(key, body)
    return _previous(rt, ch, keys) or _create(rt, ch, data, [], keys)


def deliver_email(rt: Runtime, channel_name: str, raw: bytes, signature: str | None,
                  key: str | None = None) -> Delivery:
    """Authenticate, parse, map and store one raw e-mail; attachments go to the field the
    mapping names for ``attachments``. Raises like :func:`deliver_webhook`."""
    ch = channel(rt.app, channel_name, "email")
    ch.secret()
    max_bytes = int(rt.settings.max_upload_mb * 1024 * 1024)
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"the message is larger than {rt.settings.max_upload_mb:g} MB",
                              hint="DISPATCHFLOW_MAX_UPLOAD_MB raises the limit")
    _authenticate(rt, ch, raw, signature, key)
    external, attachments = parse_email(raw, rt.app, channel_name)
    keys = delivery_keys(key or _message_id(raw), raw)
    previous = _previous(rt, ch, keys)
    if previous is not None:
        return previous
    stored: list[str] = []
    notes: list[str] = []
    try:
        rule = ch.attachment_rule()
        fdef = rt.app.entities[ch.entity].fields.get(rule.field) if rule else None
        if attachments and (fdef is None or fdef.kind != "attachment"):
            notes.extend(f"attachment {a.filename}: no attachment field in the mapping"
                         for a in attachments)
        elif attachments and fdef is not None:
            limit_mb = min(fdef.max_size_mb or rt.settings.max_upload_mb,
                           rt.settings.max_upload_mb)
            for a in attachments:
                if not accepts(fdef.accept, a.content_type, a.filename):
                    notes.append(f"attachment {a.filename}: {a.content_type} not accepted by "
                                 f"{fdef.name}")
                elif len(a.data) > limit_mb * 1024 * 1024:
                    notes.append(f"attachment {a.filename}: larger than {limit_mb:g} MB")
                elif stored and not fdef.multiple:
                    notes.append(f"attachment {a.filename}: {fdef.name} takes one file")
                else:
                    stored.append(store_file(
                        rt.engine, a.data, filename=a.filename, content_type=a.content_type,
                        created_by=ch.actor.user_id, max_bytes=int(limit_mb * 1024 * 1024)).id)
            if stored:
                external["attachments"] = stored if fdef.multiple else stored[0]
        return _create(rt, ch, external, notes, keys)
    except BaseException:
        discard_files(rt, stored)
        raise


def discard_files(rt: Runtime, file_ids: list[str]) -> None:
    """Remove files stored for a message that was then refused (nothing else points at them)."""
    if file_ids:
        with rt.engine.begin() as conn:
            conn.execute(delete(files).where(files.c.id.in_(file_ids)))


def _message_id(raw: bytes) -> str | None:
    message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    value = message.get("Message-ID")
    return str(value) if value else None


def _create(rt: Runtime, ch: Channel, external: Mapping[str, Any],
            notes: list[str], keys: DeliveryKeys) -> Delivery:
    app = rt.app
    mapped = map_payload(app, ch.name, external, rt.clock())
    if mapped.errors:
        failed = {e.field for e in mapped.errors}
        checked = validate_payload(app, ch.entity, mapped.payload, mode="create",
                                   locale=app.default_locale,
                                   writable=rt.authz.writable_fields(ch.actor, ch.entity),
                                   now=rt.clock())
        errors = mapped.errors + [e for e in checked.errors if e.field not in failed]
        raise ValidationError("the message is not a valid record", errors=errors)
    def remember(conn: Any, record_id: int) -> None:
        c, now = deliveries.c, rt.clock()
        # An older copy of these bytes (outside the window) gives way to this message;
        # a fresh one is left alone, so a concurrent twin fails on the primary key.
        conn.execute(delete(deliveries).where(c.channel == ch.name, c.key == keys.digest,
                                              c.created_at < _window_start(rt)))
        for key in (keys.key, keys.digest):
            if key is not None:
                conn.execute(deliveries.insert().values(channel=ch.name, key=key,
                                                        entity=ch.entity, record_id=record_id,
                                                        created_at=now))
    try:
        record = rt.records.create(ch.actor, ch.entity, mapped.payload,
                                   locale=app.default_locale, also=remember)
    except IntegrityError:
        # The same message arrived twice at once; the other delivery stored it.
        previous = _previous(rt, ch, keys)
        if previous is None:
            raise
        return previous
    skipped = mapped.skipped + notes
    log.info("channel %s: created %s %s%s", ch.name, ch.entity, record.get("id"),
             f" (skipped: {', '.join(skipped)})" if skipped else "")
    return Delivery(record, skipped)

