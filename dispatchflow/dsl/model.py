"""Typed IR of a bundle's entities: what every later layer reads instead of YAML.

An :class:`EntityDef` lists its :class:`FieldDef` s; :func:`field_type` maps a
field to its DSL :class:`~dispatchflow.dsl.types.Type`. Every entity also has
the system fields ``id``, ``created_at``, ``updated_at``, ``created_by`` and
``tags`` (set by the platform, readable in rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import types as T
from .source import Span

FIELD_KINDS = ("string", "text", "integer", "decimal", "boolean", "date", "datetime",
               "duration", "enum", "geo", "list", "reference", "attachment")

Label = dict[str, str]  # {"zh": "...", "en": "..."}


@dataclass(frozen=True)
class EnumValue:
    value: str
    label: Label


@dataclass(frozen=True)
class FieldDef:
    """One declared field of an entity (or of users, in ``roles.yaml``)."""

    name: str
    kind: str
    label: Label = field(default_factory=dict)
    help: Label = field(default_factory=dict)
    required: bool = False
    default: Any = None
    unique: bool = False
    index: bool = False
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum_values: tuple[EnumValue, ...] = ()
    reference: str | None = None
    accept: tuple[str, ...] = ()
    max_size_mb: float | None = None
    multiple: bool = False
    sensitive: bool = False
    system: bool = False
    span: Span | None = field(default=None, compare=False)

    @property
    def nullable(self) -> bool:
        return not self.required and self.default is None and not self.system


@dataclass(frozen=True)
class EntityDef:
    name: str
    label: Label
    fields: dict[str, FieldDef]
    file: str
    sensitive: bool = False
    title_field: str | None = None
    description: Label = field(default_factory=dict)
    span: Span | None = field(default=None, compare=False)


SYSTEM_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("id", "integer", {"zh": "编号", "en": "ID"}, system=True),
    FieldDef("created_at", "datetime", {"zh": "创建时间", "en": "Created at"}, system=True),
    FieldDef("updated_at", "datetime", {"zh": "更新时间", "en": "Updated at"}, system=True),
    FieldDef("created_by", "string", {"zh": "创建人", "en": "Created by"}, system=True),
    FieldDef("tags", "list", {"zh": "标签", "en": "Tags"}, system=True),
)

_SCALAR_TYPES = {
    "string": T.T_STRING, "text": T.T_STRING, "integer": T.T_NUMBER, "decimal": T.T_NUMBER,
    "boolean": T.T_BOOL, "date": T.T_DATE, "datetime": T.T_DATETIME,
    "duration": T.T_DURATION, "geo": T.T_GEO, "list": T.T_STRING_LIST,
    "attachment": T.Type(T.ATTACHMENT),
}


def field_type(f: FieldDef) -> T.Type:
    """The DSL type of a field's value (nullable unless required, defaulted or system)."""
    if f.kind == "enum":
        base = T.enum_type(tuple(v.value for v in f.enum_values))
    elif f.kind == "reference":
        base = T.entity_type(f.reference or "?")
    else:
        base = _SCALAR_TYPES[f.kind]
    if f.system and f.name == "created_by":
        return base.with_null(True)
    return base.with_null(f.nullable)
