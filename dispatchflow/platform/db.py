"""Database engines and the system tables every installation has.

Entity tables are generated per app version in :mod:`.storage`; the tables
here hold versions, users, tokens, audit rows, the event outbox and files.
JSON columns use JSONB on PostgreSQL. Datetimes are stored in UTC.
"""

from __future__ import annotations

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
from sqlalchemy.engine import Engine

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
    Index("ix_df_outbox_pending", "processed_at", "id"),
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


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on and WAL journaling."""
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
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def create_system_tables(engine: Engine) -> None:
    """Create the system tables if they do not exist (idempotent)."""
    SYSTEM.create_all(engine)
