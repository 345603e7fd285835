"""The DSL's static types.

A :class:`Type` is a kind plus details (list element, entity name, enum values)
and a ``nullable`` flag. ``null_ok`` records that the author acknowledged the
null (``?.``, ``coalesce``), which silences nullable warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

NUMBER = "number"
STRING = "string"
BOOL = "bool"
DATETIME = "datetime"
DATE = "date"
DURATION = "duration"
DISTANCE = "distance"
GEO = "geo"
LIST = "list"
ENTITY = "entity"
ATTACHMENT = "attachment"
NULL = "null"
ERROR = "error"  # an expression that already failed to check; suppresses cascades

ORDERABLE = {NUMBER, STRING, DATETIME, DATE, DURATION, DISTANCE}


@dataclass(frozen=True)
class Type:
    """A static type. ``enum_values`` is set for enum-valued strings."""

    kind: str
    nullable: bool = False
    null_ok: bool = False
    elem: Type | None = None
    entity: str | None = None
    enum_values: tuple[str, ...] | None = None

    def __str__(self) -> str:
        if self.kind == LIST and self.elem is not None:
            text = f"list of {self.elem.base_name()}"
        else:
            text = self.base_name()
        return text + (" (nullable)" if self.nullable and self.kind != NULL else "")

    def base_name(self) -> str:
        if self.kind == ENTITY:
            return f"{self.entity} record"
        if self.enum_values is not None:
            return "enum (" + ", ".join(self.enum_values) + ")"
        return self.kind

    @property
    def is_error(self) -> bool:
        return self.kind == ERROR

    def with_null(self, nullable: bool, null_ok: bool | None = None) -> Type:
        return replace(self, nullable=nullable,
                       null_ok=self.null_ok if null_ok is None else null_ok)

    def non_null(self) -> Type:
        return replace(self, nullable=False, null_ok=False)


T_NUMBER = Type(NUMBER)
T_STRING = Type(STRING)
T_BOOL = Type(BOOL)
T_DATETIME = Type(DATETIME)
T_DATE = Type(DATE)
T_DURATION = Type(DURATION)
T_DISTANCE = Type(DISTANCE)
T_GEO = Type(GEO)
T_NULL = Type(NULL, nullable=True, null_ok=True)
T_ERROR = Type(ERROR)
T_STRING_LIST = Type(LIST, elem=T_STRING)


def list_of(elem: Type) -> Type:
    return Type(LIST, elem=elem.non_null())


def entity_type(name: str, nullable: bool = False) -> Type:
    return Type(ENTITY, nullable=nullable, entity=name)


def enum_type(values: tuple[str, ...], nullable: bool = False) -> Type:
    return Type(STRING, nullable=nullable, enum_values=values)


def merge_null(result: Type, *operands: Type) -> Type:
    """``result`` made nullable when any operand is; acknowledged only if all of those are."""
    nullable_ops = [t for t in operands if t.nullable]
    if not nullable_ops:
        return result
    return result.with_null(True, all(t.null_ok for t in nullable_ops))


def same_kind(a: Type, b: Type) -> bool:
    """Whether two values can be compared for equality / ordering."""
    if a.is_error or b.is_error or a.kind == NULL or b.kind == NULL:
        return True
    if a.kind != b.kind:
        return False
    if a.kind == ENTITY:
        return a.entity == b.entity
    if a.kind == LIST:
        return a.elem is None or b.elem is None or same_kind(a.elem, b.elem)
    return True


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two branches/list items, or None when they differ."""
    if a.is_error:
        return b
    if b.is_error:
        return a
    if a.kind == NULL:
        return b.with_null(True, True)
    if b.kind == NULL:
        return a.with_null(True, True)
    if not same_kind(a, b):
        return None
    base = a
    if a.enum_values is not None and b.enum_values != a.enum_values:
        base = replace(a, enum_values=None if b.enum_values is None
                       else tuple(dict.fromkeys(a.enum_values + b.enum_values)))
    return merge_null(base.non_null(), a, b)
