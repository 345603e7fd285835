"""CSV import: many records of one entity from a spreadsheet export, checked first.

The file is UTF-8 (a byte-order mark, as Excel's "CSV UTF-8" writes, is fine).
Other encodings (GBK from older Excel versions) are refused with a message
saying how to convert, never guessed: a wrong guess would store garbled names.
The first row names the columns: field names (``asset_code``) or field labels
in Chinese or English (``设备编号``, ``Asset code``). Each cell is converted by
:func:`text_value` -- the text conventions also used for e-mail intake:

===========  ==========================================================
field type   cell text
===========  ==========================================================
integer      ``42``
decimal      ``12.5``
boolean      ``true``/``false``, ``是``/``否``, ``1``/``0``, ``yes``/``no``
enum         the value (``P1``) or its label (``P1 紧急``, ``Urgent``)
geo          ``lat,lng``, e.g. ``31.2304,121.4737``
list         items separated by ``;`` (or, when there is none, by ``,``)
reference    the record id, e.g. ``12``
attachment   uploaded file id(s), separated like lists
date         ``2026-03-02`` or ``2026/3/2``
datetime     ``2026-03-02T10:00:00+08:00``; without an offset (``2026-03-02 10:00``,
             ``2026/3/2 10:00``) in the app's time zone
other        the text as is (durations ``2h``)
===========  ==========================================================

An empty cell means "not given" (the field's default applies). Row numbers
are spreadsheet rows: the header is row 1.

**Every row is checked before anything is written**: the entity's validation
(the same :func:`~dispatchflow.forms.validation.validate_payload` as every
other intake, with the actor's writable fields), references to existing
records, unique fields (against the table and within the file) and the actor's
row filter. With ``all_or_nothing`` (the default) one bad row means nothing is
imported; the good rows are then written in ONE transaction, each with its
audit row and outbox event, so a failure while writing (practically only a
concurrent insert of the same unique value) also leaves nothing behind. With
``all_or_nothing=False`` the good rows are written, each in its own
transaction, and the bad ones reported.

Why not ``RecordService.create`` per row: it commits per record, so an
all-or-nothing import could not be undone half-way, and it checks references
and unique values one query per record. The import takes the same steps as
``create`` from the records service (``validate_new``: validation and defaults;
``may_create``: the row filter; ``insert_new``: the row, its audit row and
outbox event) and runs the checks against stored data in batches, inside
transactions of its own.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ...dsl.model import EntityDef, FieldDef
from ...dsl.suggest import did_you_mean
from ...errors import NotFoundError
from ..records.actors import Actor
from ..records.attachments import attachment_errors

if TYPE_CHECKING:
    from ..assembly import Runtime

#: ``progress(stage, done, total)``: stage is "check" (validating rows) or "write".
Progress = Callable[[str, int, int], None]

_TRUE = {"true", "1", "是", "yes", "y"}
_FALSE = {"false", "0", "否", "no", "n"}
_INT = re.compile(r"[+-]?\d+")
_GEO = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*[,，]\s*([+-]?\d+(?:\.\d+)?)\s*")
_CHUNK = 500  # ids per IN (...) query
_SLASHED_DATETIMES = ("%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")


@dataclass(frozen=True)
class RowError:
    """A problem with one row (``field`` empty when it concerns the whole row or file)."""

    row_number: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row_number}" if self.row_number else "file"
        return f"{where}: {self.field}: {self.message}" if self.field else \
            f"{where}: {self.message}"


@dataclass
class ImportResult:
    """How many records were created (and their ids) and every row problem found."""

    created: int
    errors: list[RowError]
    ids: list[int] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


# ------------------------------------------------------------------ cell text


def text_value(f: FieldDef, text: str, tz: str = "UTC") -> Any:
    """The JSON payload value of one cell (or e-mail value) ``text`` for field ``f``.

    Date-times without an offset are taken in ``tz`` (the app's time zone).
    Text that does not convert is returned unchanged, so validation reports it
    with the field's own message ("must be a whole number").
    """
    kind = f.kind
    if kind == "datetime":
        return _datetime_text(text, tz)
    if kind == "date":
        return _date_text(text)
    if kind == "integer" or kind == "reference":
        if _INT.fullmatch(text):
            return int(text)
        if kind == "integer":
            try:
                number = float(text)
            except ValueError:
                return text
            return int(number) if number.is_integer() else number
        return text
    if kind == "decimal":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "boolean":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    if kind == "geo":
        m = _GEO.fullmatch(text)
        return {"lat": float(m.group(1)), "lng": float(m.group(2))} if m else text
    if kind == "list" or (kind == "attachment" and f.multiple):
        return split_list(text)
    if kind == "enum":
        return _enum_value(f, text)
    return text


def _datetime_text(text: str, tz: str) -> str:
    """ISO with an offset from ``2026-03-02 10:00`` / ``2026/3/2 10:00`` (zone ``tz``)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _SLASHED_DATETIMES:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return text
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.isoformat()


def _date_text(text: str) -> str:
    """``2026-03-02`` from ``2026/3/2`` (as spreadsheets write dates); else unchanged."""
    try:
        return datetime.strptime(text, "%Y/%m/%d").date().isoformat()
    except ValueError:
        return text


def split_list(text: str) -> list[str]:
    """Items of a list cell: separated by ``;`` when there is one, else by ``,`` (or ``、``)."""
    parts = re.split(r"[;；]", text) if re.search(r"[;；]", text) else re.split(r"[,，、]", text)
    return [p.strip() for p in parts if p.strip()]


def _enum_value(f: FieldDef, text: str) -> str:
    values = [v.value for v in f.enum_values]
    if text in values:
        return text
    folded = text.casefold()
    for v in f.enum_values:
        if v.value.casefold() == folded or any(
                lbl.casefold() == folded for lbl in v.label.values()):
            return v.value
    return text


# ------------------------------------------------------------------ reading


def _read_text(path_or_file: str | Path | IO[bytes] | IO[str]) -> str:
    if isinstance(path_or_file, str | Path):
        data: bytes | str = Path(path_or_file).read_bytes()
    else:
        data = path_or_file.read()
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _FileProblem(
            f"the file is not UTF-8 (line {line}); save it as \"CSV UTF-8\" in Excel, or "
            "convert it, e.g. iconv -f GBK -t UTF-8 in.csv > out.csv") from exc


class _FileProblem(Exception):
    pass


def columns(entity: EntityDef, header: Iterable[str]) -> tuple[list[str | None], list[RowError]]:
    """The field of each header cell (by name, or zh/en label) and header problems."""
    by_label: dict[str, str] = {}
    for f in entity.fields.values():
        for text in f.label.values():
            by_label.setdefault(text.strip().casefold(), f.name)
    fields: list[str | None] = []
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    for raw in header:
        title = (raw or "").strip()
        name = title if title in entity.fields else by_label.get(title.casefold())
        if not title:
            errors.append(RowError(1, "", "a column has no name in the header row"))
        elif name is None:
            hint = did_you_mean(title, _column_names(entity))
            errors.append(RowError(1, title, f"{entity.name} has no field '{title}'"
                                   + (f"; {hint}" if hint else "")))
        elif entity.fields[name].system:
            errors.append(RowError(1, title, f"'{name}' is set by dispatchflow and cannot be "
                                   "imported; remove the column"))
        elif name in seen:
            errors.append(RowError(1, title, f"columns '{seen[name]}' and '{title}' are both "
                                   f"the field '{name}'"))
        else:
            seen[name] = title
            fields.append(name)
            continue
        fields.append(None)
    return fields, errors


def _column_names(entity: EntityDef) -> list[str]:
    """What a header may say: field names, and labels that are not just a name's spelling."""
    names = [n for n, f in entity.fields.items() if not f.system]
    folded = {n.casefold() for n in names}
    return names + [lbl for n in names for lbl in entity.fields[n].label.values()
                    if lbl.casefold() not in folded]


# ------------------------------------------------------------------ import


def import_csv(runtime: Runtime, actor: Actor, entity: str,
               path_or_file: str | Path | IO[bytes] | IO[str], *, all_or_nothing: bool = True,
               progress: Progress | None = None, locale: str | None = None) -> ImportResult:
    """Import the rows of a CSV file as new ``entity`` records; see module docs.

    Returns the number created and every problem as :class:`RowError` (messages
    in ``locale``, default the app's). Raises NotFoundError for an unknown
    entity and PermissionDenied when ``actor`` may not create its records.
    """
    rt = runtime
    edef = rt.app.entities.get(entity)
    if edef is None:
        raise NotFoundError(f"no entity '{entity}'",
                            hint=did_you_mean(entity, rt.app.entities) or None)
    rt.authz.require(actor, entity, "create")
    locale = locale or rt.app.default_locale
    try:
        text = _read_text(path_or_file)
    except _FileProblem as exc:
        return ImportResult(0, [RowError(0, "", str(exc))])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return ImportResult(0, [RowError(0, "", "the file is empty; the first row must name "
                                         "the columns")])
    fields, errors = columns(edef, header)
    if errors:
        return ImportResult(0, errors)
    rows = [(n, cells) for n, cells in enumerate(reader, start=2)
            if any(c.strip() for c in cells)]
    now = rt.clock()
    good, errors = _check_rows(rt, actor, edef, fields, rows, locale, now, progress)
    result = ImportResult(0, errors, rows=len(rows))
    if errors and all_or_nothing:
        return result
    _write(rt, actor, edef, good, now, result, all_or_nothing, progress)
    result.errors.sort(key=lambda e: e.row_number)
    return result


def _check_rows(rt: Runtime, actor: Actor, edef: EntityDef, fields: list[str | None],
                rows: list[tuple[int, list[str]]], locale: str, now: datetime,
                progress: Progress | None) -> tuple[list[tuple[int, dict[str, Any]]],
                                                    list[RowError]]:
    """Validate every row; returns (row number, runtime values) of the good rows and errors."""
    writable = rt.authz.writable_fields(actor, edef.name)
    errors: list[RowError] = []
    checked: list[tuple[int, dict[str, Any]]] = []
    for i, (number, cells) in enumerate(rows, start=1):
        if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields):]):
            errors.append(RowError(number, "", f"the row has {len(cells)} cells but the header "
                                   f"has {len(fields)} columns"))
        else:
            payload = {name: text_value(edef.fields[name], cell.strip(), rt.app.timezone)
                       for name, cell in zip(fields, cells, strict=False)
                       if name is not None and cell.strip()}
            result = rt.records.validate_new(edef, payload, writable=writable, locale=locale,
                                             now=now)
            if result.errors:
                errors.extend(RowError(number, e.field, e.message) for e in result.errors)
            else:
                checked.append((number, result.values))
        if progress:
            progress("check", i, len(rows))
    with rt.engine.connect() as conn:
        errors.extend(_reference_errors(rt, conn, edef, checked, locale))
        errors.extend(_unique_errors(rt, conn, edef, checked))
        for number, values in checked:
            if not rt.records.may_create(conn, actor, edef, values, now):
                errors.append(RowError(number, "", rt.message("row_filter", locale=locale)))
            errors.extend(RowError(number, e.field, e.message) for e in attachment_errors(
                rt, conn, actor, edef, values, None, locale))
    errors.sort(key=lambda e: e.row_number)
    failed = {e.row_number for e in errors}
    return [(n, v) for n, v in checked if n not in failed], errors


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _reference_errors(rt: Runtime, conn: Connection, edef: EntityDef,
                      checked: list[tuple[int, dict[str, Any]]], locale: str) -> list[RowError]:
    """References to records that do not exist (or are deleted), one query per 500 ids."""
    errors = []
    for f in edef.fields.values():
        if f.kind != "reference" or not f.reference:
            continue
        wanted = sorted({v[f.name] for _, v in checked if v.get(f.name) is not None})
        target = rt.tables[f.reference]
        found: set[Any] = set()
        for chunk in _chunks(wanted):
            found.update(conn.execute(select(target.c.id).where(target.c.id.in_(chunk))
                                      .where(target.c.deleted_at.is_(None))).scalars())
        for number, values in checked:
            value = values.get(f.name)
            if value is not None and value not in found:
                errors.append(RowError(number, f.name, rt.message(
                    "reference_missing", locale=locale, entity=f.reference, id=value)))
    return errors


def _unique_errors(rt: Runtime, conn: Connection, edef: EntityDef,
                   checked: list[tuple[int, dict[str, Any]]]) -> list[RowError]:
    """Values of unique fields already stored, or repeated within the file."""
    errors = []
    table = rt.tables[edef.name]
    for f in edef.fields.values():
        if not f.unique or f.kind == "geo" or f.name not in table.c:
            continue
        first_row: dict[Any, int] = {}
        for number, values in checked:
            value = values.get(f.name)
            if value is None:
                continue
            if value in first_row:
                errors.append(RowError(number, f.name, f"{value!r} is also in row "
                                       f"{first_row[value]}; {f.name} must be unique"))
            else:
                first_row[value] = number
        taken: set[Any] = set()
        column = table.c[f.name]
        for chunk in _chunks(sorted(first_row, key=str)):
            taken.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        errors.extend(RowError(n, f.name, f"a {edef.name} with {f.name} {v!r} already exists")
                      for v, n in first_row.items() if v in taken)
    return errors


def _write(rt: Runtime, actor: Actor, edef: EntityDef, good: list[tuple[int, dict[str, Any]]],
           now: datetime, result: ImportResult, all_or_nothing: bool,
           progress: Progress | None) -> None:
    """Insert the checked rows: in one transaction, or (partial) one transaction per row."""
    if all_or_nothing:
        current = 0  # the row being written, for the message if the database refuses it
        try:
            with rt.engine.begin() as conn:
                ids = []
                for i, (number, values) in enumerate(good, start=1):
                    current = number
                    stored = rt.records.insert_new(conn, actor, edef, values, now)
                    ids.append(int(stored["id"]))
                    if progress:
                        progress("write", i, len(good))
        except DBAPIError as exc:
            result.errors.append(RowError(current, "", "the database refused the row "
                                          f"({_reason(exc)}); nothing was imported"))
            return
        result.ids, result.created = ids, len(ids)
        return
    for i, (number, values) in enumerate(good, start=1):
        try:
            with rt.engine.begin() as conn:
                stored = rt.records.insert_new(conn, actor, edef, values, now)
                result.ids.append(int(stored["id"]))
        except DBAPIError as exc:
            result.errors.append(RowError(number, "", f"the database refused the row "
                                          f"({_reason(exc)}); it was not imported"))
        if progress:
            progress("write", i, len(good))
    result.created = len(result.ids)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__

