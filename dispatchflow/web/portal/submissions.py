"""A page's form post -> payload, with the files it uploaded kept only if it succeeds.

Uploads are stored while the post is parsed (so their ids can go into the
payload). When the submission is then refused (a field error, a failed action),
:meth:`Submission.discard` deletes them and drops their ids from the values
shown again: a refused submission leaves no files behind, and the submitter
chooses them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import request

from ...forms.submission import parse_form_submission
from ...forms.validation import FieldError
from ...platform.assembly import Runtime
from ...platform.records.actors import Actor
from ...platform.records.files import discard_files, store_file
from ..i18n import locale


@dataclass
class Submission:
    """The parsed post: payload, upload errors and the ids of the files it stored."""

    payload: dict[str, Any]
    errors: list[FieldError]
    stored: list[str] = field(default_factory=list)

    def discard(self, rt: Runtime) -> bool:
        """Delete the files this post stored and drop them from the payload; True if any."""
        if not self.stored:
            return False
        discard_files(rt.engine, self.stored)
        gone = set(self.stored)
        for name, value in list(self.payload.items()):
            if isinstance(value, list):
                self.payload[name] = [v for v in value if v not in gone]
            elif isinstance(value, str) and value in gone:
                self.payload[name] = None
        self.stored = []
        return True


def parse_post(rt: Runtime, form_name: str, actor: Actor, *, mode: str) -> Submission:
    """Parse the current request's post of ``form_name``, storing its uploads as ``actor``."""
    max_bytes = int(rt.settings.max_upload_mb * 1024 * 1024)
    stored: list[str] = []

    def keep(_field: str, upload: Any) -> str:
        file_id = store_file(rt.engine, upload.read(), filename=upload.filename or "upload",
                             content_type=upload.content_type or "application/octet-stream",
                             created_by=actor.user_id, max_bytes=max_bytes).id
        stored.append(file_id)
        return file_id

    def keep_data_url(_field: str, data: bytes, content_type: str) -> str:
        file_id = store_file(rt.engine, data, filename="signature.png",
                             content_type=content_type, created_by=actor.user_id,
                             max_bytes=max_bytes).id
        stored.append(file_id)
        return file_id

    try:
        payload, errors = parse_form_submission(
            rt.app, form_name, {k: request.form.getlist(k) for k in request.form},
            {k: request.files.getlist(k) for k in request.files}, store_file=keep,
            store_data_url=keep_data_url, default_max_mb=rt.settings.max_upload_mb,
            mode=mode, locale=locale())
    except BaseException:
        discard_files(rt.engine, stored)
        raise
    return Submission(payload, list(errors), stored)
