"""HTML form submissions -> the JSON payload shape that validation and the API use.

A browser sends strings (and files). :func:`parse_form_submission` reads only
the form's own, editable fields and turns them into JSON values: numbers,
booleans (an unchecked checkbox is ``false``), geo points from
``<name>_lat`` / ``<name>_lng``, ``datetime-local`` values in the app's time
zone as ISO date-times with an offset, tags split on ``,`` / ``，``, file ids.
An empty input is left out on create (so defaults apply) and ``null`` on
update. A value that does not parse is passed through unchanged so that
:func:`~dispatchflow.forms.validation.validate_payload` reports it with the
usual message.

Files are checked here, before anything is stored: size against the field's
``max_size_mb`` (else ``default_max_mb``), type against its ``accept``
patterns. The type is taken from the content where it can be recognised (PNG,
JPEG, GIF, WebP, HEIC/AVIF, BMP, TIFF, PDF), so a renamed file or an SVG
posing as ``image/png`` is refused. Accepted files go to the caller's
``store_file`` callback, signature data URLs (``data:image/png;base64,...``) to
``store_data_url``; the payload carries the returned file ids.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ..dsl.compiler import App
from ..errors import DispatchflowError
from .messages import field_message, join_list, label_text, normalize_locale
from .schema import FILE_ID_PATTERN, FormField, check_mode, form_layout
from .validation import FieldError

#: Checkbox values that mean "checked" (anything a browser or a script may send).
TRUE_WORDS = frozenset({"true", "on", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "off", "0", "no", "n"})

_TAG_SPLIT = re.compile(r"[,，\n]")
_FILE_ID = re.compile(FILE_ID_PATTERN)
_DATA_URL = re.compile(r"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)?((?:;[^,;]*)*),(.*)", re.S)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"),
    (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
)
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif",
                b"msf1": "image/heif", b"avif": "image/avif"}
_SNIFFABLE = frozenset({t for _, t in _MAGIC} | set(_HEIF_BRANDS.values()) | {"image/webp"})


class UploadedFile(Protocol):
    """What the web layer hands in per file (werkzeug's ``FileStorage`` fits)."""

    @property
    def filename(self) -> str | None: ...

    @property
    def content_type(self) -> str | None: ...

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class BufferedUpload:
    """A checked upload, read into memory: what ``store_file`` receives.

    ``content_type`` is the checked type (recognised from the content where
    possible), not necessarily what the browser claimed.
    """

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, size: int = -1, /) -> bytes:
        return self.data if size is None or size < 0 else self.data[:size]


StoreFile = Callable[[str, BufferedUpload], str]
"""``store_file(field, upload) -> file_id``; may raise a DispatchflowError to refuse it."""

StoreDataUrl = Callable[[str, bytes, str], str]
"""``store_data_url(field, data, content_type) -> file_id`` for decoded data URLs."""


def parse_form_submission(app: App, form_name: str, fields: Mapping[str, Sequence[str]],
                          files: Mapping[str, Sequence[UploadedFile]] | None = None, *,
                          store_file: StoreFile | None = None,
                          store_data_url: StoreDataUrl | None = None,
                          default_max_mb: float = 10.0, mode: str = "create",
                          locale: str | None = None) -> tuple[dict[str, Any], list[FieldError]]:
    """The JSON payload of a submission of form ``form_name``, and file errors.

    ``fields`` maps input names to their values (``request.form.getlist``),
    ``files`` input names to uploads (``request.files.getlist``). Inputs that
    are not fields of the form (``csrf_token``, buttons) and ``readonly``
    fields are ignored. Without ``store_data_url`` a data URL is stored with
    ``store_file`` as ``signature.png``. A DispatchflowError raised by a store
    callback becomes an ``upload_failed`` error. ``mode`` (create/update)
    decides whether an empty input is left out or sent as null; ``locale`` the
    language of the errors (default: the app's).

    Raises UnknownNameError for an unknown form; ValueError when files arrive
    but no ``store_file`` was given.
    """
    check_mode(mode)
    layout = form_layout(app, form_name)
    parser = _Parser(app, fields, files or {}, store_file, store_data_url, default_max_mb,
                     mode, normalize_locale(locale, app.default_locale))
    for ff in layout.fields.values():
        if not ff.readonly:
            parser.field(ff)
    return parser.payload, parser.errors


class _Parser:
    def __init__(self, app: App, fields: Mapping[str, Sequence[str]],
                 files: Mapping[str, Sequence[UploadedFile]], store_file: StoreFile | None,
                 store_data_url: StoreDataUrl | None, default_max_mb: float, mode: str,
                 locale: str) -> None:
        self.app, self.fields, self.files = app, fields, files
        self.store_file, self.store_data_url = store_file, store_data_url
        self.default_max_mb, self.mode, self.locale = default_max_mb, mode, locale
        self.payload: dict[str, Any] = {}
        self.errors: list[FieldError] = []

    def values(self, name: str) -> list[str]:
        raw = self.fields.get(name) or []
        if isinstance(raw, str):
            raw = [raw]
        return [v for v in raw if isinstance(v, str)]

    def first(self, name: str) -> str:
        vals = self.values(name)
        return vals[0] if vals else ""

    def set(self, name: str, value: Any) -> None:
        if value is None or value == "" or value == []:
            if self.mode != "create":
                self.payload[name] = None
            return
        self.payload[name] = value

    def error(self, ff: FormField, code: str, **params: Any) -> None:
        label = label_text(ff.label, self.locale, ff.name, self.app.default_locale)
        public = "format" if code.startswith("format") else code
        self.errors.append(FieldError(ff.name, public, field_message(
            code, self.locale, label=label, **params)))

    # -- one field
    def field(self, ff: FormField) -> None:
        f, name = ff.field, ff.name
        kind = f.kind
        if kind == "attachment":
            self.attachment(ff)
        elif kind == "geo":
            self.set(name, self.geo(name))
        elif kind == "boolean":
            self.boolean(ff)
        elif kind == "list":
            if ff.widget == "checkbox":
                self.set(name, [v.strip() for v in self.values(name) if v.strip()])
            else:
                parts = [p.strip() for v in self.values(name) for p in _TAG_SPLIT.split(v)]
                self.set(name, [p for p in parts if p])
        elif kind in ("integer", "decimal", "reference"):
            self.set(name, _number(self.first(name).strip()))
        elif kind == "datetime":
            self.set(name, _local_datetime(self.first(name).strip(), self.app.timezone))
        elif kind == "text":
            self.set(name, self.first(name).replace("\r\n", "\n").replace("\r", "\n"))
        else:  # string, enum, date, duration
            self.set(name, self.first(name).strip())

    def boolean(self, ff: FormField) -> None:
        vals = [v.strip().lower() for v in self.values(ff.name)]
        if ff.widget == "checkbox":
            # Unchecked boxes are not sent; "false" comes from a hidden companion input.
            self.payload[ff.name] = any(v in TRUE_WORDS for v in vals)
            return
        word = next((v for v in vals if v), "")
        if word in TRUE_WORDS:
            self.payload[ff.name] = True
        elif word in FALSE_WORDS:
            self.payload[ff.name] = False
        else:
            self.set(ff.name, word or None)

    def geo(self, name: str) -> Any:
        lat, lng = self.first(f"{name}_lat").strip(), self.first(f"{name}_lng").strip()
        if not lat and not lng:
            combined = self.first(name).strip()
            if "," not in combined:
                return combined or None
            lat, lng = (p.strip() for p in combined.split(",", 1))
        point: dict[str, Any] = {}
        for key, text in (("lat", lat), ("lng", lng)):
            if text:
                point[key] = _number(text, whole=False)
        return point

    # -- files
    def attachment(self, ff: FormField) -> None:
        name, f = ff.name, ff.field
        ids: list[Any] = []
        uploads = 0
        for value in self.values(name):
            value = value.strip()
            if not value:
                continue
            if value.startswith("data:"):
                file_id = self.data_url(ff, value)
                if file_id is not None:
                    ids.append(file_id)
                    uploads += 1
            else:
                ids.append(value)  # an id kept from an earlier submission (checked later)
        for upload in self.files.get(name) or []:
            file_id = self.upload(ff, upload)
            if file_id is not None:
                ids.append(file_id)
                uploads += 1
        if f.multiple:
            self.set(name, list(dict.fromkeys(ids)))
            return
        if uploads > 1 or (uploads == 0 and len(ids) > 1):
            self.error(ff, "too_many_files")
            return
        # A new file replaces the one kept from before.
        self.set(name, ids[-1] if ids else None)

    def limit_bytes(self, ff: FormField) -> int:
        mb = ff.field.max_size_mb if ff.field.max_size_mb is not None else self.default_max_mb
        return int(mb * 1024 * 1024)

    def limit_mb(self, ff: FormField) -> str:
        mb = ff.field.max_size_mb if ff.field.max_size_mb is not None else self.default_max_mb
        return f"{mb:g}"

    def upload(self, ff: FormField, upload: UploadedFile) -> str | None:
        filename = _safe_name(getattr(upload, "filename", None) or "")
        limit = self.limit_bytes(ff)
        data = upload.read(limit + 1)
        if not filename and not data:
            return None  # an empty file input
        shown = filename or "upload"
        if not data:
            self.error(ff, "file_empty", filename=shown)
            return None
        if len(data) > limit:
            self.error(ff, "file_too_large", filename=shown, limit=self.limit_mb(ff))
            return None
        ctype = effective_type(data, getattr(upload, "content_type", None), filename)
        if not accepts(ff.field.accept, ctype, filename):
            self.error(ff, "file_type", filename=shown, type=ctype,
                       accept=join_list(list(ff.field.accept), self.locale))
            return None
        store_file = self.store_file
        if store_file is None:
            raise ValueError("parse_form_submission got files but no store_file callback")
        return self._store(ff, shown, lambda: store_file(
            ff.name, BufferedUpload(shown, ctype, data)))

    def data_url(self, ff: FormField, value: str) -> str | None:
        limit = self.limit_bytes(ff)
        match = _DATA_URL.fullmatch(value)
        if match is None or ";base64" not in (match.group(2) or "").lower():
            self.error(ff, "format_data_url")
            return None
        body = match.group(3)
        if len(body) > (limit + 3) * 4 // 3 + 4:
            self.error(ff, "file_too_large", filename="signature.png", limit=self.limit_mb(ff))
            return None
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            self.error(ff, "format_data_url")
            return None
        if not data:
            self.error(ff, "format_data_url")
            return None
        if len(data) > limit:
            self.error(ff, "file_too_large", filename="signature.png", limit=self.limit_mb(ff))
            return None
        ctype = effective_type(data, match.group(1), "")
        if not accepts(ff.field.accept, ctype, ""):
            self.error(ff, "file_type", filename="signature.png", type=ctype,
                       accept=join_list(list(ff.field.accept), self.locale))
            return None
        if self.store_data_url is not None:
            store_data_url = self.store_data_url
            return self._store(ff, "signature.png",
                               lambda: store_data_url(ff.name, data, ctype))
        if self.store_file is None:
            raise ValueError("parse_form_submission got a data URL but no store callback")
        store_file = self.store_file
        return self._store(ff, "signature.png", lambda: store_file(
            ff.name, BufferedUpload("signature.png", ctype, data)))

    def _store(self, ff: FormField, filename: str, store: Callable[[], str]) -> str | None:
        try:
            return store()
        except DispatchflowError as exc:
            self.error(ff, "upload_failed", filename=filename, reason=exc.message)
            return None


# ------------------------------------------------------------------ values


def _number(text: str, whole: bool = True) -> Any:
    """An int or float from form text; the text itself when it is not a number."""
    if not text:
        return None
    if whole and re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    if value != value or value in (float("inf"), float("-inf")):
        return text
    return value


def _local_datetime(text: str, tz: str) -> str:
    """``2026-03-02T10:00`` (``datetime-local``, the app's zone) -> ISO with an offset."""
    if not text:
        return text
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return text
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.isoformat()


def _safe_name(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1].strip()[:200]


def sniff_type(data: bytes) -> str | None:
    """The media type recognised from the first bytes of ``data``, or None."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(data[8:12])
    return None


def effective_type(data: bytes, declared: str | None, filename: str) -> str:
    """The type a file is taken to have (see module docs).

    The recognised type wins. A declared (or file-name) type that could have
    been recognised but was not — any ``image/*``, PDF — becomes
    ``application/octet-stream``, so such files pass no ``image/*`` check.
    """
    sniffed = sniff_type(data)
    if sniffed:
        return sniffed
    claimed = (declared or "").split(";", 1)[0].strip().lower()
    if not claimed or claimed == "application/octet-stream":
        claimed = (mimetypes.guess_type(filename)[0] or "") if filename else ""
    if not claimed or claimed.startswith("image/") or claimed in _SNIFFABLE:
        return "application/octet-stream"
    return claimed


def accepts(patterns: Sequence[str], ctype: str, filename: str) -> bool:
    """Whether ``ctype`` (or the file name's extension) fits the field's ``accept`` list.

    Patterns: ``*/*``, ``type/*``, an exact type, or an extension like ``.pdf``.
    No patterns accepts anything.
    """
    if not patterns:
        return True
    ctype = ctype.lower()
    lowered = filename.lower()
    for pattern in patterns:
        p = pattern.strip().lower()
        if p in ("*", "*/*") or p == ctype:
            return True
        if p.endswith("/*") and ctype.startswith(p[:-1]):
            return True
        if p.startswith(".") and lowered.endswith(p) and ctype != "application/octet-stream":
            return True
    return False
