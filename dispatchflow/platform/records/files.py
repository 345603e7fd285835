"""Uploaded files (photos, signatures, e-mail attachments), kept in the database.

Stored in the same transactional store as records, so a record never points at
a file that a crash lost. Ids are random and unguessable; size and type limits
are checked by the caller against the field (forms) and here against the
global cap.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from ...errors import NotFoundError, ValidationError
from ..store.db import files


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


def store_file(engine: Engine, data: bytes, *, filename: str, content_type: str,
               created_by: str, max_bytes: int) -> StoredFile:
    """Keep ``data``; raises ValidationError when it is empty or larger than ``max_bytes``."""
    if not data:
        raise ValidationError("the file is empty")
    if len(data) > max_bytes:
        raise ValidationError(f"the file is larger than {max_bytes // (1024 * 1024)} MB")
    file_id = secrets.token_urlsafe(24)
    digest = hashlib.sha256(data).hexdigest()
    safe_name = filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"
    with engine.begin() as conn:
        conn.execute(files.insert().values(
            id=file_id, sha256=digest, filename=safe_name, content_type=content_type[:200],
            size=len(data), data=data, created_at=datetime.now(UTC), created_by=created_by))
    return StoredFile(file_id, safe_name, content_type, len(data), digest)


def load_file(engine: Engine, file_id: str) -> tuple[StoredFile, bytes]:
    with engine.connect() as conn:
        row = conn.execute(select(files).where(files.c.id == file_id)).first()
    if row is None:
        raise NotFoundError("no such file")
    return StoredFile(row.id, row.filename, row.content_type, row.size, row.sha256), row.data


def discard_files(engine: Engine, file_ids: list[str]) -> None:
    """Delete files stored for a submission that was then refused (nothing points at them)."""
    if file_ids:
        with engine.begin() as conn:
            conn.execute(delete(files).where(files.c.id.in_(file_ids)))
