"""Records as rules see them: stored rows with references expanded into nested records.

Rules, flows and notifications read paths like ``work_order.customer.tier``:
the ``customer`` reference must be a dict, not an id. :class:`FactLoader`
reads a record and follows its references to :data:`defaults.FACTS_DEPTH`
levels. A record is read with the records its references point to joined (one
query, not one per reference); deeper levels are read as they are reached.
Every record read is cached for the loader's life, which is one transaction:
writes made in it go through :meth:`FactLoader.written`.
:func:`flatten` turns such a record back into stored values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from .. import defaults
from ..store.statements import References, reference_label, row_by_id, rows_by_ids
from ..store.storage import from_row

if TYPE_CHECKING:
    from ..assembly import Runtime


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
        #: Records whose rows this transaction holds locked: read with ``lock`` or by
        #: :meth:`lock_many`, or locked by a caller that says so (:meth:`held_by_caller`).
        self.held: set[tuple[str, int]] = set()
        self._joined: dict[str, References] = {}

    def row(self, entity: str, record_id: int, lock: bool = False,
            skip_locked: bool = False) -> dict[str, Any] | None:
        """The stored record (references as ids, plus ``row_version``), or None.

        ``lock`` locks the row (``skip_locked``: None, not waiting, when another
        transaction holds it; PostgreSQL only).
        """
        key = (entity, int(record_id))
        if lock or key not in self._rows:
            mode = ("skip" if skip_locked else "wait") if lock else None
            table, references = self.rt.tables[entity], self._references(entity)
            found = self.conn.execute(row_by_id(table, mode, references),
                                      {"record_id": int(record_id)}).mappings().first()
            rec = None
            if found is not None:
                rec = self._keep(entity, table, references, found)
                if lock:
                    self.held.add(key)
            self._rows[key] = rec
        return self._rows[key]

    def held_by_caller(self, entity: str, record_id: int) -> None:
        """The caller locked this record's row in this transaction (see :attr:`held`)."""
        self.held.add((entity, int(record_id)))

    def lock_many(self, entity: str, record_ids: list[int]) -> list[int]:
        """Lock those of the records no other transaction holds (PostgreSQL; SQLite takes
        them all) and keep them; returns their ids."""
        table, references = self.rt.tables[entity], self._references(entity)
        rows = self.conn.execute(rows_by_ids(table, references),
                                 {"ids": [int(i) for i in record_ids]}).mappings().all()
        for found in rows:
            self._keep(entity, table, references, found)
        locked = [int(found["id"]) for found in rows]
        self.held.update((entity, i) for i in locked)
        return locked

    def _references(self, entity: str) -> References:
        """The reference columns of ``entity`` joined when one of its records is read
        (none when references are not expanded)."""
        found = self._joined.get(entity)
        if found is None:
            tables = self.rt.tables
            found = self._joined[entity] = () if self.depth <= 0 else tuple(
                (f.name, f.reference, tables[f.reference])
                for f in self.rt.app.entities[entity].fields.values()
                if f.kind == "reference" and f.reference in tables)
        return found

    def _keep(self, entity: str, table: Any, references: References,
              found: Any) -> dict[str, Any]:
        """Cache a row read with its joined references (those already cached are kept:
        they may hold this transaction's writes); returns the record."""
        for position, (_, target_entity, target) in enumerate(references):
            ref_id = found[reference_label(position, "id")]
            if ref_id is None or (target_entity, int(ref_id)) in self._rows:
                continue
            raw = {c.name: found[reference_label(position, c.name)] for c in target.c}
            self._raw[(target_entity, int(ref_id))] = raw
            self._rows[(target_entity, int(ref_id))] = self._record(target_entity, raw)
        key = (entity, int(found["id"]))
        self._raw[key] = {c.name: found[c.name] for c in table.c}
        rec = self._rows[key] = self._record(entity, self._raw[key])
        return rec

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
