"""Records as rules see them: stored rows with references expanded into nested records.

Rules, flows and notifications read paths like ``work_order.customer.tier``:
the ``customer`` reference must be a dict, not an id. :class:`FactLoader`
reads a record and follows its references to :data:`defaults.FACTS_DEPTH`
levels (one query per referenced record, cached for the loader's life, which
is one transaction: writes made in it go through :meth:`FactLoader.written`).
:func:`flatten` turns such a record back into stored values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from . import defaults
from .statements import row_by_id, rows_by_ids
from .storage import from_row

if TYPE_CHECKING:
    from .runtime import Runtime


class FactLoader:
    """Loads records with nested references within one connection (see module docs)."""

    def __init__(self, runtime: Runtime, conn: Connection,
                 depth: int = defaults.FACTS_DEPTH) -> None:
        self.rt = runtime
        self.conn = conn
        self.depth = depth
        self._rows: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._raw: dict[tuple[str, int], dict[str, Any]] = {}
        #: Other state read once per transaction, kept by its owner module (a record's
        #: flow instances, its pending timers), keyed by (owner, entity, record id).
        self.memo: dict[tuple[str, str, int], Any] = {}

    def row(self, entity: str, record_id: int, lock: bool = False,
            skip_locked: bool = False) -> dict[str, Any] | None:
        """The stored record (references as ids, plus ``row_version``), or None.

        ``lock`` locks the row (``skip_locked``: None, not waiting, when another
        transaction holds it; PostgreSQL only).
        """
        key = (entity, int(record_id))
        if lock or key not in self._rows:
            mode = ("skip" if skip_locked else "wait") if lock else None
            found = self.conn.execute(row_by_id(self.rt.tables[entity], mode),
                                      {"record_id": int(record_id)}).mappings().first()
            rec = None
            if found is not None:
                self._raw[key] = dict(found)
                rec = self._record(entity, self._raw[key])
            self._rows[key] = rec
        return self._rows[key]

    def lock_many(self, entity: str, record_ids: list[int]) -> list[int]:
        """Lock those of the records no other transaction holds (PostgreSQL; SQLite takes
        them all) and keep them; returns their ids."""
        rows = self.conn.execute(rows_by_ids(self.rt.tables[entity]),
                                 {"ids": [int(i) for i in record_ids]}).mappings().all()
        for found in rows:
            key = (entity, int(found["id"]))
            self._raw[key] = dict(found)
            self._rows[key] = self._record(entity, self._raw[key])
        return [int(found["id"]) for found in rows]

    def _record(self, entity: str, raw: dict[str, Any]) -> dict[str, Any]:
        rec = from_row(self.rt.app.entities[entity], raw, self.rt.tz)
        rec["row_version"] = raw["row_version"]
        rec["deleted_at"] = raw["deleted_at"]
        return rec

    def written(self, entity: str, record_id: int, columns: dict[str, Any]) -> None:
        """The caller updated these columns of a record in this transaction: keep the
        cached copy equal to the row (read again next time if it is not cached)."""
        key = (entity, int(record_id))
        raw = self._raw.get(key)
        if raw is None:
            self._rows.pop(key, None)
            return
        raw.update(columns)
        self._rows[key] = self._record(entity, raw)

    def forget(self, entity: str, record_id: int) -> None:
        """Drop a cached record (after the caller changed it in a way not told)."""
        key = (entity, int(record_id))
        self._rows.pop(key, None)
        self._raw.pop(key, None)

    def record(self, entity: str, record_id: int, lock: bool = False) -> dict[str, Any] | None:
        """The record with references expanded (a fresh dict the caller may change)."""
        rec = self.row(entity, record_id, lock=lock)
        return None if rec is None else self.expand(entity, rec, self.depth)

    def expand(self, entity: str, rec: dict[str, Any], depth: int) -> dict[str, Any]:
        """A copy of ``rec`` whose reference fields hold nested records (to ``depth``)."""
        out = dict(rec)
        if depth <= 0:
            return out
        for f in self.rt.app.entities[entity].fields.values():
            value = out.get(f.name)
            if f.kind != "reference" or not f.reference or value is None \
                    or isinstance(value, dict):
                continue
            nested = self.row(f.reference, value)
            out[f.name] = None if nested is None else \
                self.expand(f.reference, nested, depth - 1)
        return out


def flatten(value: Any) -> Any:
    """A stored value from a fact value: nested records become their ids."""
    if isinstance(value, dict) and "id" in value and "lat" not in value:
        return value["id"]
    return value
