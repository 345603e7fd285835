"""REST API ``/api/v1``: generic per-entity CRUD, lists with filters, files, timeline.

Token auth only (bearer), CSRF-exempt, errors as problem+json. Updates need
the record's version: ``If-Match: "<row_version>"`` (or ``row_version`` in the
body); a stale one gives 409.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request, url_for

from ..errors import DispatchflowError, ValidationError
from ..forms.submission import effective_type
from ..platform.actors import Actor
from ..platform.attachments import inline_image_type, readable_file
from ..platform.files import store_file
from ..platform.runtime import NoActiveVersion
from .auth import runtime, token_actor
from .i18n import locale
from .openapi import openapi_document
from .problems import from_error, problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint == "api.openapi":
        return None
    actor = token_actor()
    if actor is None:
        response = problem(401, "unauthorized", "Authentication required",
                           "send a valid API token: Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="dispatchflow"'
        return response
    g.api_actor = actor
    runtime().refresh()
    return None


@bp.errorhandler(DispatchflowError)
def _dispatchflow_error(exc: DispatchflowError) -> Response:
    if isinstance(exc, NoActiveVersion):
        return problem(503, "no-version", "No app version", exc.message, hint=exc.hint)
    return from_error(exc)


def _actor() -> Actor:
    actor: Actor = g.api_actor
    return actor


def _json_body() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationError("the body must be JSON (Content-Type: application/json)")
    return data


def _etag(record: dict[str, Any]) -> str:
    return f'"{record["row_version"]}"'


def _expected_version(body: Any) -> int:
    header = request.headers.get("If-Match", "").strip()
    if header:
        try:
            return int(header.removeprefix("W/").strip('"'))
        except ValueError as exc:
            raise ValidationError("If-Match must be the record's ETag, e.g. \"3\"") from exc
    if isinstance(body, dict) and isinstance(body.get("row_version"), int):
        return int(body["row_version"])
    raise _PreconditionRequired()


class _PreconditionRequired(DispatchflowError):
    def __init__(self) -> None:
        super().__init__("updates must say which version they change",
                         hint='send If-Match: "<row_version>" (the ETag of the record)')


@bp.errorhandler(_PreconditionRequired)
def _precondition(exc: _PreconditionRequired) -> Response:
    return problem(428, "precondition-required", "Precondition required", exc.message,
                   hint=exc.hint)


@bp.get("/openapi.json")
def openapi() -> Response:
    rt = runtime()
    rt.refresh()
    return jsonify(openapi_document(rt.app))


@bp.get("/me")
def me() -> Response:
    actor = _actor()
    return jsonify({"id": actor.user_id, "name": actor.name, "roles": list(actor.roles),
                    "scopes": list(actor.scopes)})


@bp.get("/<entity>")
def list_records(entity: str) -> Response:
    args = request.args
    try:
        limit = int(args.get("limit", 50))
    except ValueError as exc:
        raise ValidationError("limit must be a whole number") from exc
    page = runtime().records.list(_actor(), entity, filter=args.get("filter"),
                                  sort=args.get("sort"), limit=limit, cursor=args.get("cursor"))
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


@bp.post("/<entity>")
def create_record(entity: str) -> tuple[Response, int, dict[str, str]]:
    record = runtime().records.create(_actor(), entity, _json_body(), locale=locale())
    location = url_for("api.get_record", entity=entity, record_id=record["id"])
    return jsonify(record), 201, {"Location": location, "ETag": _etag(record)}


@bp.get("/<entity>/<int:record_id>")
def get_record(entity: str, record_id: int) -> tuple[Response, int, dict[str, str]]:
    record = runtime().records.get(_actor(), entity, record_id)
    return jsonify(record), 200, {"ETag": _etag(record)}


@bp.patch("/<entity>/<int:record_id>")
def update_record(entity: str, record_id: int) -> tuple[Response, int, dict[str, str]]:
    body = _json_body()
    expected = _expected_version(body)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "row_version"}
    record = runtime().records.update(_actor(), entity, record_id, body,
                                      expected_version=expected, locale=locale())
    return jsonify(record), 200, {"ETag": _etag(record)}


@bp.delete("/<entity>/<int:record_id>")
def delete_record(entity: str, record_id: int) -> tuple[str, int]:
    header = request.headers.get("If-Match", "").strip()
    expected = int(header.strip('"')) if header.strip('"').isdigit() else None
    runtime().records.delete(_actor(), entity, record_id, expected_version=expected)
    return "", 204


@bp.get("/<entity>/<int:record_id>/timeline")
def timeline(entity: str, record_id: int) -> Response:
    return jsonify({"items": runtime().records.timeline(_actor(), entity, record_id)})


@bp.post("/files")
def upload_file() -> tuple[Response, int]:
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError("send the file as multipart/form-data field 'file'")
    rt = runtime()
    data = upload.read()
    filename = upload.filename or "upload"
    # Keep the type recognised from the content, not the claimed one: attachment
    # fields check it against their `accept` list (platform/attachments.py).
    stored = store_file(rt.engine, data, filename=filename,
                        content_type=effective_type(data, upload.mimetype, filename),
                        created_by=_actor().user_id,
                        max_bytes=int(rt.settings.max_upload_mb * 1024 * 1024))
    return jsonify({"id": stored.id, "filename": stored.filename, "size": stored.size,
                    "content_type": stored.content_type, "sha256": stored.sha256}), 201


@bp.get("/files/<file_id>")
def download_file(file_id: str) -> Response:
    """The file, for its uploader and readers of a record holding it; else 404."""
    meta, data = readable_file(runtime(), _actor(), file_id)
    image = inline_image_type(data)
    # Only a recognised raster image is shown inline: anything else (HTML, SVG, ...)
    # is a download, so a stored page can never run script on our origin.
    response = Response(data, mimetype=image or meta.content_type)
    disposition = "inline" if image else "attachment"
    response.headers["Content-Disposition"] = \
        f"{disposition}; filename=\"{meta.id}\"; filename*=UTF-8''{quote(meta.filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
