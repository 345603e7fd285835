"""REST API ``/api/v1``: generic per-entity CRUD, lists with filters, files, timeline.

Token auth only (bearer), CSRF-exempt, errors as problem+json. Updates need
the record's version: ``If-Match: "<row_version>"`` (or ``row_version`` in the
body); a stale one gives 409.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from ...errors import DispatchflowError, NotFoundError, ValidationError
from ...forms.schema import INT64_MAX
from ...forms.submission import effective_type
from ...platform.records.actors import Actor
from ...platform.records.attachments import inline_image_type, readable_file
from ...platform.records.files import store_file
from ...platform.runtime.state import NoActiveVersion
from ..auth.views import runtime, token_actor
from ..i18n import locale
from ..problems import from_error, problem
from .openapi import openapi_document
from .params import parse_if_match, parse_list_query

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Endpoints anyone may read without a token: the API's own description.
PUBLIC_ENDPOINTS = frozenset({"api.openapi", "api.docs"})

#: First path segments of the API's own routes: never an entity name, so that
#: ``POST /api/v1/me`` is 405 rather than "create a record of entity me".
RESERVED_SEGMENTS = ("me", "offers", "files", "tokens", "docs", "openapi.json")


class EntityNameConverter(BaseConverter):
    """``<entity:name>``: an entity name (as bundles spell them), not a reserved segment."""

    regex = "(?!(?:" + "|".join(re.escape(s) for s in RESERVED_SEGMENTS) + \
        ")(?:/|$))[a-z][a-z0-9_]*"


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["entity"] = EntityNameConverter


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    actor = token_actor()
    if actor is None:
        response = problem(401, "unauthorized", "Authentication required",
                           "send a valid API token: Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="dispatchflow"'
        return response
    g.api_actor = actor
    for name, value in (request.view_args or {}).items():
        # Record and offer ids are 64-bit: a larger number names nothing (the
        # database would refuse to compare with it).
        if isinstance(value, int) and not 1 <= value <= INT64_MAX:
            raise NotFoundError(f"no record with {name} {value}")
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


def _expected_version(body: Any) -> int | None:
    """The version an update applies to (None: ``If-Match: *``, any current one)."""
    precondition = parse_if_match(request.headers.get("If-Match"))
    if precondition is not None:
        return precondition.version
    version = body.get("row_version") if isinstance(body, dict) else None
    if isinstance(version, int) and not isinstance(version, bool):
        return version
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
    return jsonify(openapi_document(rt, current_app.url_map))


@bp.get("/me")
def me() -> Response:
    actor = _actor()
    return jsonify({"id": actor.user_id, "name": actor.name, "roles": list(actor.roles),
                    "scopes": list(actor.scopes)})


@bp.get("/<entity:entity>")
def list_records(entity: str) -> Response:
    rt = runtime()
    entity_def = rt.app.entities.get(entity)
    if entity_def is None:
        raise NotFoundError(f"no entity '{entity}'")
    query = parse_list_query(entity_def, request.args)
    page = rt.records.list(_actor(), entity, filter=query.filter, sort=query.sort,
                           limit=query.limit, cursor=query.cursor)
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


@bp.post("/<entity:entity>")
def create_record(entity: str) -> tuple[Response, int, dict[str, str]]:
    record = runtime().records.create(_actor(), entity, _json_body(), locale=locale())
    location = url_for("api.get_record", entity=entity, record_id=record["id"])
    return jsonify(record), 201, {"Location": location, "ETag": _etag(record)}


@bp.get("/<entity:entity>/<int:record_id>")
def get_record(entity: str, record_id: int) -> tuple[Response, int, dict[str, str]]:
    record = runtime().records.get(_actor(), entity, record_id)
    return jsonify(record), 200, {"ETag": _etag(record)}


@bp.patch("/<entity:entity>/<int:record_id>")
def update_record(entity: str, record_id: int) -> tuple[Response, int, dict[str, str]]:
    body = _json_body()
    expected = _expected_version(body)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "row_version"}
    record = runtime().records.update(_actor(), entity, record_id, body,
                                      expected_version=expected, locale=locale())
    return jsonify(record), 200, {"ETag": _etag(record)}


@bp.delete("/<entity:entity>/<int:record_id>")
def delete_record(entity: str, record_id: int) -> tuple[str, int]:
    precondition = parse_if_match(request.headers.get("If-Match"))
    runtime().records.delete(_actor(), entity, record_id,
                             expected_version=precondition.version if precondition else None)
    return "", 204


@bp.get("/<entity:entity>/<int:record_id>/timeline")
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
