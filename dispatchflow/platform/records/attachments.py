"""Who may read a stored file, and which files an attachment field may point at.

A file id (:mod:`.files`) is random and unguessable, but it is not a permission:
ids travel in records, timelines and notifications. So:

* **Reading** (:func:`readable_file`): a file is readable by its uploader and by
  whoever may read a record that holds it in an attachment field they may read
  (the record's row filter and field mask, as for the record itself). Anyone
  else gets NotFoundError, exactly as for an id that does not exist, so a probe
  learns nothing.
* **Attaching** (:func:`attachment_errors`): an attachment field accepts only
  files that exist, that the submitter uploaded (or that are already on the
  record: keeping a photo is not re-uploading it), and whose stored type fits
  the field's ``accept`` list (docs/bundle.md). The stored type is the one
  recognised from the content at upload (:func:`~..forms.submission.effective_type`),
  so a page uploaded as ``image/png`` is not an image here.
* **Serving** (:func:`inline_image_type`): only a raster image recognised from
  its bytes may be shown inline; everything else is a download.

The platform's own actors (``is_system``: rules, imports run as the system,
the portal's public submissions) may attach any existing file of a fitting
type; they read every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.engine import Connection

from ...dsl.model import EntityDef
from ...errors import NotFoundError
from ...forms.messages import field_message, join_list, label_text
from ...forms.submission import accepts, sniff_type
from ...forms.validation import FieldError
from ..store.db import files, reading
from .actors import Actor
from .files import StoredFile

if TYPE_CHECKING:
    from ..assembly import Runtime

#: Types a browser may render inline from our origin: raster images only (an SVG
#: or an HTML page could run script; they are always downloads).
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                                "image/bmp"})

_FILE_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def readable_file(rt: Runtime, actor: Actor, file_id: str) -> tuple[StoredFile, bytes]:
    """The file ``file_id`` and its bytes, if ``actor`` may read it (see module docs).

    Raises NotFoundError when there is no such file and when the actor may not
    read it (the two are indistinguishable).
    """
    if not _plausible_id(file_id):
        raise NotFoundError("no such file")
    with reading(rt.engine) as conn:
        row = conn.execute(select(files).where(files.c.id == file_id)).first()
        if row is None or not (actor.is_system or row.created_by == actor.user_id
                               or _on_a_readable_record(rt, conn, actor, file_id)):
            raise NotFoundError("no such file")
    return StoredFile(row.id, row.filename, row.content_type, row.size, row.sha256), row.data


def _plausible_id(file_id: str) -> bool:
    # forms.schema.FILE_ID_PATTERN: 16 to 64 characters of base64url.
    return 16 <= len(file_id) <= 64 and set(file_id) <= _FILE_ID_CHARS


def _on_a_readable_record(rt: Runtime, conn: Connection, actor: Actor, file_id: str) -> bool:
    """Whether a live record the actor may read holds ``file_id`` in a field it may read."""
    # Attachment columns are JSON: a file id or a list of them. Their text holds the
    # id in double quotes, which no other id can match (ids are base64url).
    needle = f'"{file_id}"'
    now = rt.clock()
    for name, entity in rt.app.entities.items():
        readable = rt.authz.readable_fields(actor, name)
        columns = [f.name for f in entity.fields.values()
                   if f.kind == "attachment" and f.name in readable]
        if not columns:
            continue
        table = rt.tables[name]
        query = select(table.c.id).where(table.c.deleted_at.is_(None)).where(or_(*(
            cast(table.c[c], Text).contains(needle, autoescape=True) for c in columns)))
        rows = rt.authz.row_clause(actor, name, "read", table, rt.tables, now=now)
        if rows is not None:
            query = query.where(rows)
        if conn.execute(query.limit(1)).first() is not None:
            return True
    return False


def attachment_errors(rt: Runtime, conn: Connection, actor: Actor, entity: EntityDef,
                      values: Mapping[str, Any], current: Mapping[str, Any] | None,
                      locale: str) -> list[FieldError]:
    """Field errors for the files that ``values`` put in ``entity``'s attachment fields.

    ``values`` are validated runtime values (a file id or a list of them per
    field); ``current`` is the stored record they change (None on create), whose
    files may stay. Codes: ``file_unknown`` (no such file, or one the actor did
    not upload: the same answer for both), ``file_type`` (not of an accepted
    type). One query for all the ids; never writes.
    """
    wanted = {name: _ids(value) for name, value in values.items()
              if (f := entity.fields.get(name)) is not None and f.kind == "attachment"}
    wanted = {name: ids for name, ids in wanted.items() if ids}
    if not wanted:
        return []
    kept = {i for f in entity.fields.values() if f.kind == "attachment"
            for i in _ids((current or {}).get(f.name))}
    every = sorted({i for ids in wanted.values() for i in ids})
    found = {r.id: r for r in conn.execute(
        select(files.c.id, files.c.filename, files.c.content_type, files.c.created_by)
        .where(files.c.id.in_(every)))}
    errors = []
    for name, ids in wanted.items():
        f = entity.fields[name]
        label = label_text(f.label, locale, name, rt.app.default_locale)
        for index, file_id in enumerate(ids):
            path = f"{name}.{index}" if f.multiple else name
            row = found.get(file_id)
            if row is None or not (actor.is_system or file_id in kept
                                   or row.created_by == actor.user_id):
                errors.append(FieldError(path, "file_unknown", field_message(
                    "file_unknown", locale, label=label, id=file_id)))
            elif not accepts(f.accept, row.content_type, row.filename):
                errors.append(FieldError(path, "file_type", field_message(
                    "file_type", locale, label=label, filename=row.filename,
                    type=row.content_type, accept=join_list(list(f.accept), locale))))
    return errors


def _ids(value: Any) -> list[str]:
    items: Iterable[Any] = value if isinstance(value, list) else [value]
    return [i for i in items if isinstance(i, str)]


def inline_image_type(data: bytes) -> str | None:
    """The image type to serve ``data`` inline as, or None: serve it as a download."""
    sniffed = sniff_type(data)
    return sniffed if sniffed in INLINE_IMAGE_TYPES else None
