"""Database engines and the system tables every installation has.

Entity tables are generated per app version in :mod:`.storage`; the tables
here hold versions, users, tokens, audit rows, the event outbox and files.
JSON columns use JSONB on PostgreSQL. Datetimes are stored in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from .sql_regex import register_sqlite_regexp

# Alembic on SQLite (batch mode) needs deterministic constraint names.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


SYSTEM = new_metadata()

app_versions = Table(
    "df_app_versions", SYSTEM,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("app_name", String(100), nullable=False),
    Column("bundle_version", String(100), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("sources", JSONType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    Column("active", Boolean, nullable=False, default=False),
    Column("note", Text),
)

users = Table(
    "df_users", SYSTEM,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(300)),
    Column("roles", JSONType, nullable=False),
    Column("attributes", JSONType, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "df_api_tokens", SYSTEM,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(100), ForeignKey("df_users.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSONType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)

audit_log = Table(
    "df_audit", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(50), nullable=False),
    Column("actor", String(100)),
    Column("channel", String(50)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("changes", JSONType),
    Column("version_number", Integer),
    Index("ix_df_audit_record", "entity", "record_id"),
)

outbox = Table(
    "df_outbox", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("event", String(100), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("version_number", Integer),
    # A poison event is parked after defaults.EVENT_MAX_ATTEMPTS failures so the
    # record's later events go on; `dispatchflow jobs failed` lists it, `retry` revives it.
    Column("last_error", Text),
    Column("failed_at", DateTime(timezone=True)),
    # When the sweeper last re-enqueued it: at most once per sweep interval.
    Column("swept_at", DateTime(timezone=True)),
    Index("ix_df_outbox_pending", "processed_at", "id"),
    Index("ix_df_outbox_record", "entity", "record_id", "id"),
)

flow_instances = Table(
    # One row per (flow, record): the pure InstanceState as JSON, pinned to the
    # app version the instance started on.
    "df_flow_instances", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("flow", String(100), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("state", JSONType, nullable=False),
    # What SLA clocks are computed from: [{at, event, entered, targets}, ...]
    Column("history", JSONType, nullable=False),
    # SLA alerts already raised: {"clock": ["warn", "breach"]}
    Column("sla", JSONType, nullable=False),
    Column("ended", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_df_flow_instances_record", "flow", "entity", "record_id", unique=True),
)

timers = Table(
    # Durable timers: flow timers, SLA warnings/breaches, escalation levels, offer
    # expiries. The scheduler turns a due row into an outbox event exactly once.
    "df_timers", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("kind", String(30), nullable=False),  # flow | sla | escalation | offer
    Column("key", String(200), nullable=False),  # timer id, clock/level, offer id
    Column("payload", JSONType, nullable=False),
    Column("fire_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # pending | fired | cancelled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Index("ix_df_timers_due", "status", "fire_at"),
    Index("ix_df_timers_record", "entity", "record_id", "status"),
)

timeline = Table(
    # What the platform did to a record and why (rules fired with their
    # conditions, flow transitions, timers, dispatch decisions, notifications);
    # merged with the audit rows into the record's timeline.
    "df_timeline", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("summary", Text, nullable=False),
    Column("detail", JSONType),
    Column("event_id", BigInteger),
    Index("ix_df_timeline_record", "entity", "record_id", "id"),
)

dispatch_rounds = Table(
    # One row per dispatch attempt of a record: the policy, which try it is,
    # and the decision (ranked candidates with score terms, exclusion counts).
    "df_dispatch_rounds", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("policy", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    # batched (waiting for its burst) | pending | offered | escalated | done
    Column("status", String(20), nullable=False),
    Column("batch_key", String(200)),  # dispatch.batch.group_by value of the record
    Column("decision", JSONType),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Index("ix_df_dispatch_rounds_record", "entity", "record_id", "id"),
    Index("ix_df_dispatch_rounds_status", "status"),
)

offers = Table(
    # An offer of a record to one candidate. Exactly one can be accepted per
    # record: accepting is a conditional update under the record's row lock.
    "df_offers", SYSTEM,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("round_id", BigInteger, ForeignKey("df_dispatch_rounds.id"), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("candidate_id", BigInteger, nullable=False),
    Column("mode", String(20), nullable=False),  # one_at_a_time | broadcast | grab_pool
    Column("state", String(20), nullable=False),  # pending|accepted|rejected|expired|withdrawn
    Column("rank", Integer, nullable=False),
    Column("score", JSONType),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    Column("reason", Text),
    Index("ix_df_offers_record", "entity", "record_id", "state"),
    Index("ix_df_offers_candidate", "candidate_id", "state"),
)

deliveries = Table(
    # One row per message an intake channel turned into a record, so a sender's
    # retry of the same message (same key) finds the record instead of making another.
    "df_deliveries", SYSTEM,
    Column("channel", String(100), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("entity", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

files = Table(
    "df_files", SYSTEM,
    Column("id", String(64), primary_key=True),  # random, unguessable
    Column("sha256", String(64), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
)


#: psycopg: prepare a statement the second time a connection runs it, keep up to
#: this many prepared per connection (see make_engine).
PREPARE_AFTER = 1
PREPARED_MAX = 2000


# ---------------------------------------------------------------- notifications
# The notification tables: deliveries, their attempts, and users' inboxes.
#
# Defined on :data:`~dispatchflow.platform.store.db.SYSTEM`, so
# :func:`~dispatchflow.platform.store.db.create_system_tables` creates them.
#
# ``df_notifications`` holds one row per (notification firing, channel, recipient):
# the rendered text, where it goes and how far it got. Its ``status``:
#
# ===========  ===============================================================
# pending      to be sent (now, or at ``next_attempt_at`` after a failure)
# held         waiting until ``not_before`` (quiet hours; a digest's window)
# sending      claimed by a worker (taken over after the send lease expires)
# sent         handed over to the transport (``sent_at``)
# failed       gave up: a permanent error or ``defaults.NOTIFY_MAX_ATTEMPTS``
# digested     part of the held digest ``digest_parent``; sent with it
# suppressed   nothing to send to (e.g. the recipient has no e-mail address)
# unconfigured the channel lacks its configuration (no SMTP host, webhook URL or
#              secret): held, not retried; released when a worker starts with it
# ===========  ===============================================================
#
# ``dedupe_key`` names (notification, record, channel, recipient); ``active_key``
# carries it while the row is pending, held, sending, digested or unconfigured and is NULL
# otherwise, and is unique: the database itself refuses a second live copy of
# the same message, even from two workers at once.

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


def make_engine(url: str, *, derived_work: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on, WAL journaling and RE2 as REGEXP.

    ``derived_work`` is for processes that only commit work derived from what is
    already stored (workers): on PostgreSQL their commits do not wait for the
    disk (a server crash can only undo work that is then simply done again) and
    connections are not pinged before use (a job that meets a dead connection
    fails and is retried).
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
            register_sqlite_regexp(dbapi_conn)  # RE2 instead of SQLAlchemy's Python re
        return engine
    engine = create_engine(url, pool_pre_ping=not derived_work, **kwargs)
    if engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _prepared_statements(dbapi_conn: Any, _record: Any) -> None:
            # psycopg prepares a statement on its PREPARE_AFTER-th run and keeps 100 by
            # default: the hot path runs more distinct statements than that, so they
            # were evicted and planned again on every run.
            dbapi_conn.prepare_threshold = PREPARE_AFTER
            dbapi_conn.prepared_max = PREPARED_MAX

    if not derived_work:
        return engine
    if engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _asynchronous_commit(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
            dbapi_conn.commit()
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction of their own (each statement
    sees what is committed when it starts, as in any READ COMMITTED transaction).

    It runs in autocommit: no BEGIN and ROLLBACK round trips, and, on PostgreSQL,
    the connection keeps its prepared statements (psycopg drops them all on a
    rollback, which is how ``engine.connect()`` ends).
    """
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def create_system_tables(engine: Engine) -> None:
    """Create the system tables if they do not exist (idempotent)."""
    SYSTEM.create_all(engine)
