"""One SQL table per entity, generated from the compiled definitions (SQLAlchemy Core).

Table ``e_<entity>``: system columns ``id`` (integer key), ``created_at``,
``updated_at``, ``created_by``, ``row_version`` (optimistic locking),
``deleted_at`` (soft delete) and ``tags`` (JSON), then one column per field:

=============  ==================================================
field type     column(s)
=============  ==================================================
string         VARCHAR(max_length or 255)
text           TEXT
integer        BIGINT
decimal        FLOAT (the rules layer computes in floats)
boolean        BOOLEAN
date           DATE
datetime       TIMESTAMP WITH TIME ZONE (stored in UTC)
duration       BIGINT seconds
enum           VARCHAR(64)
geo            ``<name>_lat`` and ``<name>_lng`` FLOAT
list           JSON (JSONB on PostgreSQL)
reference      BIGINT, foreign key to ``e_<target>.id``
attachment     JSON (list of file ids and metadata)
=============  ==================================================

Field columns are nullable in SQL: requiredness is enforced by the entity's JSON
Schema on every write, and keeping SQL permissive makes additive migrations
safe on tables that already hold rows. :func:`to_row` / :func:`from_row`
convert between runtime records (what rules see) and column values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from ...dsl.compiler import App
from ...dsl.model import EntityDef, FieldDef
from .. import defaults
from .db import JSONType, new_metadata

ENTITY_PREFIX = "e_"
SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "created_by", "row_version", "deleted_at",
                  "tags")


def table_name(entity: str) -> str:
    """SQL table of an entity (prefixed so no entity collides with a system table)."""
    return ENTITY_PREFIX + entity


def column_type(f: FieldDef) -> TypeEngine[Any]:
    """The SQL type of a (non-geo) field's column."""
    kind = f.kind
    if kind == "string":
        return String(f.max_length or defaults.DEFAULT_STRING_LENGTH)
    types: dict[str, TypeEngine[Any]] = {
        "text": Text(), "integer": BigInteger(), "decimal": Float(), "boolean": Boolean(),
        "date": Date(), "datetime": DateTime(timezone=True), "duration": BigInteger(),
        "enum": String(64), "list": JSONType, "attachment": JSONType,
        "reference": BigInteger(),
    }
    return types[kind]


def field_columns(f: FieldDef) -> list[Column]:
    """The column(s) storing one field."""
    if f.kind == "geo":
        return [Column(f"{f.name}_lat", Float), Column(f"{f.name}_lng", Float)]
    args: list[Any] = []
    if f.kind == "reference" and f.reference:
        args.append(ForeignKey(f"{table_name(f.reference)}.id"))
    return [Column(f.name, column_type(f), *args)]


def entity_table(entity: EntityDef, metadata: MetaData) -> Table:
    """Define ``e_<entity>`` in ``metadata``."""
    cols: list[Any] = [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(100)),
        Column("row_version", Integer, nullable=False, default=1),
        Column("deleted_at", DateTime(timezone=True)),
        Column("tags", JSONType, nullable=False),
    ]
    extras: list[Any] = []
    for f in entity.fields.values():
        if f.system:
            continue
        cols.extend(field_columns(f))
        if f.unique and f.kind != "geo":
            extras.append(UniqueConstraint(f.name))
        elif (f.index or f.kind == "reference") and f.kind != "geo":
            extras.append(Index(f"ix_{table_name(entity.name)}_{f.name}", f.name))
    return Table(table_name(entity.name), metadata, *cols, *extras)


def build_metadata(app: App) -> MetaData:
    """A MetaData with every entity table of ``app`` (referenced tables first)."""
    metadata = new_metadata()
    for entity in app.entities.values():
        entity_table(entity, metadata)
    return metadata


# ------------------------------------------------------------------ conversion


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A datetime read from the database as an aware UTC one (None stays None)."""
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we stored UTC
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_row(entity: EntityDef, record: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the (runtime-typed) fields present in ``record``."""
    row: dict[str, Any] = {}
    for name, value in record.items():
        f = entity.fields.get(name)
        if f is None:
            continue
        if name == "tags":
            row["tags"] = list(value or [])
            continue
        if f.system:
            continue
        if f.kind == "geo":
            row[f"{name}_lat"] = None if value is None else float(value["lat"])
            row[f"{name}_lng"] = None if value is None else float(value["lng"])
        elif f.kind == "duration":
            row[name] = None if value is None else int(value.total_seconds())
        elif f.kind == "datetime":
            row[name] = as_utc(value)
        elif f.kind == "reference":
            row[name] = value.get("id") if isinstance(value, dict) else value
        else:
            row[name] = value
    return row


def from_row(entity: EntityDef, row: Mapping[str, Any], tz: Any = UTC) -> dict[str, Any]:
    """A runtime record from a row: aware datetimes (in ``tz``), timedeltas, geo dicts.

    References stay ids; the caller resolves them when rules need the record.
    """
    rec: dict[str, Any] = {
        "id": row["id"], "created_at": _to_tz(row["created_at"], tz),
        "updated_at": _to_tz(row["updated_at"], tz), "created_by": row["created_by"],
        "tags": list(row["tags"] or []),
    }
    for f in entity.fields.values():
        if f.system:
            continue
        if f.kind == "geo":
            lat, lng = row.get(f"{f.name}_lat"), row.get(f"{f.name}_lng")
            rec[f.name] = None if lat is None or lng is None else {"lat": lat, "lng": lng}
        elif f.kind == "duration":
            v = row.get(f.name)
            rec[f.name] = None if v is None else timedelta(seconds=v)
        elif f.kind == "datetime":
            rec[f.name] = _to_tz(row.get(f.name), tz)
        elif f.kind == "list":
            v = row.get(f.name)
            rec[f.name] = None if v is None else list(v)
        else:
            rec[f.name] = row.get(f.name)
    return rec


def _to_tz(value: datetime | None, tz: Any) -> datetime | None:
    value = as_utc(value)
    return None if value is None else value.astimezone(tz)
