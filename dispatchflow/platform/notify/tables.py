"""The notification tables: deliveries, their attempts, and users' inboxes.

Defined on :data:`~dispatchflow.platform.db.SYSTEM`, so
:func:`~dispatchflow.platform.db.create_system_tables` creates them.

``df_notifications`` holds one row per (notification firing, channel, recipient):
the rendered text, where it goes and how far it got. Its ``status``:

===========  ===============================================================
pending      to be sent (now, or at ``next_attempt_at`` after a failure)
held         waiting until ``not_before`` (quiet hours; a digest's window)
sending      claimed by a worker (taken over after the send lease expires)
sent         handed over to the transport (``sent_at``)
failed       gave up: a permanent error or ``defaults.NOTIFY_MAX_ATTEMPTS``
digested     part of the held digest ``digest_parent``; sent with it
suppressed   nothing to send to (e.g. the recipient has no e-mail address)
unconfigured the channel lacks its configuration (no SMTP host, webhook URL or
             secret): held, not retried; released when a worker starts with it
===========  ===============================================================

``dedupe_key`` names (notification, record, channel, recipient); ``active_key``
carries it while the row is pending, held, sending, digested or unconfigured and is NULL
otherwise, and is unique: the database itself refuses a second live copy of
the same message, even from two workers at once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from ..db import SYSTEM, JSONType

_ID = BigInteger().with_variant(Integer, "sqlite")

#: Delivery statuses (see module docs).
PENDING, HELD, SENDING, SENT, FAILED, DIGESTED, SUPPRESSED, UNCONFIGURED = (
    "pending", "held", "sending", "sent", "failed", "digested", "suppressed", "unconfigured")

#: Statuses during which a row blocks a duplicate (``active_key`` is set).
LIVE_STATUSES = (PENDING, HELD, SENDING, DIGESTED, UNCONFIGURED)

notifications = Table(
    "df_notifications", SYSTEM,
    Column("id", _ID, primary_key=True),
    Column("notification", String(100), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("channel", String(20), nullable=False),
    # user id, e-mail address, or "webhook:<ENV>" for the webhook channel
    Column("recipient", String(320), nullable=False),
    Column("user_id", String(100)),
    # where the transport sends it: an e-mail address or the webhook URL's variable
    Column("address", String(320)),
    Column("locale", String(10), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("not_before", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_at", DateTime(timezone=True)),
    Column("claim_token", String(32)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("cause", String(300)),
    Column("dedupe_key", String(400), nullable=False),
    Column("active_key", String(400), unique=True),
    Column("digest_parent", BigInteger),
    Column("digest_count", Integer, nullable=False, default=1),
    Column("digest_of", JSONType),
    # channel extras, e.g. the webhook's recipients [{user_id, name, locale}]
    Column("payload", JSONType),
    Column("version_number", Integer),
    Index("ix_df_notifications_due", "status", "not_before"),
    Index("ix_df_notifications_record", "entity", "record_id", "id"),
    Index("ix_df_notifications_digest", "notification", "channel", "recipient", "status"),
    Index("ix_df_notifications_parent", "digest_parent"),
)

attempts = Table(
    # The delivery log: one row per try, successful or not.
    "df_notification_attempts", SYSTEM,
    Column("id", _ID, primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("df_notifications.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("detail", Text),
    Index("ix_df_notification_attempts_delivery", "delivery_id", "id"),
)

inbox = Table(
    # What the inbox channel delivers: one row per message and user.
    "df_inbox", SYSTEM,
    Column("id", _ID, primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("delivery_id", BigInteger, unique=True),
    Column("notification", String(100), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Index("ix_df_inbox_user", "user_id", "read_at", "id"),
)
