"""Runtime records as compiled expressions see them, references resolved on demand.

Row filters checked in Python (:meth:`~.authz.Authorizer.row_allowed`), rule
facts and notification recipients read records through these views: a
reference reads as its id until a field behind it is read, and then the
referenced record is loaded once per :class:`RecordBinder`. The SQL side of the
same filters (:mod:`.sql_filter`) treats a missing or soft-deleted target the
same way: its fields read as null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...dsl.model import EntityDef
from ...errors import DispatchflowError

Resolve = Callable[[str, Any], "Mapping[str, Any] | None"]


class UnresolvedReference(DispatchflowError):
    """An expression reads a field through a reference and no resolver was given."""


# ------------------------------------------------------------------ record views


class RecordBinder:
    """Presents runtime records to compiled expressions, resolving references on demand.

    A reference value may be an id, ``{"id": ...}`` or the resolved record (a
    dict with its fields). Reading ``ref.id`` never resolves; reading any other
    field through an unresolved reference calls ``resolve(entity, id)`` once per
    binder, which returns the record (a mapping, references as ids or dicts) or
    None when it is missing or soft-deleted: its fields then read as null, the
    same as SQL's ``deleted_at IS NULL`` subqueries. With ``resolve=None`` such a
    read raises :class:`UnresolvedReference`.
    """

    def __init__(self, entities: Mapping[str, EntityDef], resolve: Resolve | None = None) -> None:
        self.entities = entities
        self.resolve = resolve
        self._loaded: dict[tuple[str, Any], RecordView | None] = {}

    def bind(self, entity: EntityDef, record: Mapping[str, Any]) -> RecordView:
        """A view of ``record`` (an ``entity`` record) for compiled expressions."""
        if isinstance(record, RecordView):
            return record
        return RecordView(entity, record, self)

    def wrap(self, target: str, value: Any) -> Any:
        """The view of a reference value pointing at entity ``target``."""
        if value is None or isinstance(value, RecordView | RefView):
            return value
        if isinstance(value, Mapping):
            if set(value) <= {"id"}:
                rid = value.get("id")
                return None if rid is None else RefView(target, rid, self)
            entity = self.entities.get(target)
            return value if entity is None else RecordView(entity, value, self)
        return RefView(target, value, self)

    def load(self, target: str, rid: Any) -> RecordView | None:
        key = (target, rid)
        if key not in self._loaded:
            if self.resolve is None:
                raise UnresolvedReference(
                    f"reading a field of {target} {rid} needs the referenced record",
                    hint="pass resolve=(entity, id) -> record or None")
            data = self.resolve(target, rid)
            entity = self.entities.get(target)
            self._loaded[key] = None if data is None or entity is None else \
                RecordView(entity, data, self)
        return self._loaded[key]


class RecordView(dict):
    """A record whose reference fields read as :class:`RefView` or resolved views."""

    __slots__ = ("_entity", "_binder")

    def __init__(self, entity: EntityDef, data: Mapping[str, Any], binder: RecordBinder) -> None:
        super().__init__(data)
        self._entity = entity
        self._binder = binder

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        f = self._entity.fields.get(key)
        if value is not None and f is not None and f.kind == "reference":
            return self._binder.wrap(f.reference or "", value)
        return value


class RefView(dict):
    """An unresolved reference: ``{"id": id}`` that loads its record on first other read."""

    __slots__ = ("target", "_binder")

    def __init__(self, target: str, rid: Any, binder: RecordBinder) -> None:
        super().__init__(id=rid)
        self.target = target
        self._binder = binder

    def get(self, key: Any, default: Any = None) -> Any:
        rid = super().get("id")
        if key == "id":
            return rid
        record = self._binder.load(self.target, rid)
        return default if record is None else record.get(key, default)
