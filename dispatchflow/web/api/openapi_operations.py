"""What each API and channel endpoint takes and answers, for the OpenAPI document.

:data:`OPERATIONS` maps a Flask endpoint (``api.create_record``) to an
:class:`OperationDoc`: ``bindings`` lists the values its app-dependent path
variables take (one path per entity, action, ladder or channel) and ``build``
describes the operation for one of them. :mod:`.openapi` walks the URL map and
asks this table; a new route needs an entry here (tests/web/test_openapi.py
fails without one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .openapi_context import DocContext, json_content, problems
from .params import if_match_parameter, list_parameters

#: Values of a rule's app-dependent path variables, e.g. ``{"entity": "work_order"}``.
Binding = dict[str, str]

_ID = "$response.body#/id"
_TIMELINE_ITEM = {"type": "object", "required": ["kind"], "properties": {
    "kind": {"type": "string"}, "at": {"type": ["string", "null"]}}}


@dataclass(frozen=True)
class OperationDoc:
    """How to describe one endpoint: its expansions and the operation for each."""

    bindings: Callable[[DocContext], list[Binding]]
    build: Callable[[DocContext, Binding], dict[str, Any]]


OPERATIONS: dict[str, OperationDoc] = {}


def describes(endpoint: str, bindings: Callable[[DocContext], list[Binding]] | None = None
              ) -> Callable[[Callable[[DocContext, Binding], dict[str, Any]]],
                            Callable[[DocContext, Binding], dict[str, Any]]]:
    """Register the decorated builder as the description of ``endpoint``."""
    def register(build: Callable[[DocContext, Binding], dict[str, Any]]
                 ) -> Callable[[DocContext, Binding], dict[str, Any]]:
        OPERATIONS[endpoint] = OperationDoc(bindings or (lambda _ctx: [{}]), build)
        return build
    return register


# ------------------------------------------------------------------ expansions


def each_entity(ctx: DocContext) -> list[Binding]:
    return [{"entity": e} for e in ctx.entities()]


def each_flow_entity(ctx: DocContext) -> list[Binding]:
    return [{"entity": e} for e in ctx.flow_entities()]


def each_action(ctx: DocContext) -> list[Binding]:
    return [{"entity": e, "action": a} for e in ctx.flow_entities() for a in ctx.actions(e)]


def each_ladder(ctx: DocContext) -> list[Binding]:
    return [{"entity": e, "ladder": ladder} for e in ctx.flow_entities()
            for ladder in ctx.ladders(e)]


def each_answer(_ctx: DocContext) -> list[Binding]:
    return [{"answer": "accept"}, {"answer": "reject"}]


def each_webhook(ctx: DocContext) -> list[Binding]:
    return [{"name": ch.name} for ch in ctx.channels("webhook")]


def each_mailbox(ctx: DocContext) -> list[Binding]:
    return [{"name": ch.name} for ch in ctx.channels("email")]


# ------------------------------------------------------------------ records


def record_links(ctx: DocContext, entity: str, source: str) -> dict[str, Any]:
    """Links from a response carrying a record (``source``: where its id is) to the
    operations on that record: what a stateful client (or schemathesis) follows."""
    links = {name: {"operationId": f"{name}_{entity}", "parameters": {"record_id": source}}
             for name in ("get", "update", "timeline", "delete")}
    if entity in ctx.flow_entities():
        for name in ("actions", "sla", "dispatch", "assign"):
            links[name] = {"operationId": f"{name}_{entity}", "parameters": {"record_id": source}}
        for action in ctx.actions(entity):
            links[f"action_{action}"] = {"operationId": f"action_{entity}_{action}",
                                         "parameters": {"record_id": source}}
    return links


@describes("api.list_records", each_entity)
def _list(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"list_{e}", "summary": f"List {ctx.title(e)} records",
            "tags": [e], "parameters": list_parameters(ctx.app.entities[e]),
            "responses": {"200": {"description": "A page of records", "content": json_content({
                "type": "object", "required": ["items", "next_cursor"],
                "properties": {"items": {"type": "array", "items": ctx.entity_ref(e)},
                               "next_cursor": {"type": ["string", "null"]}}}),
                "links": record_links(ctx, e, "$response.body#/items/0/id")},
                **problems(400, 401, 403, 422)}}


@describes("api.create_record", each_entity)
def _create(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"create_{e}", "summary": f"Create a {ctx.title(e)} record",
            "tags": [e],
            "requestBody": {"required": True,
                            "content": json_content(ctx.entity_ref(e, "create"))},
            "responses": {"201": {
                "description": "Created", "content": json_content(ctx.entity_ref(e)),
                "headers": {"ETag": {"schema": {"type": "string"}},
                            "Location": {"schema": {"type": "string"}}},
                "links": record_links(ctx, e, _ID)},
                **problems(400, 401, 403, 409, 413, 415, 422)}}


@describes("api.get_record", each_entity)
def _get(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"get_{e}", "summary": f"One {ctx.title(e)} record", "tags": [e],
            "responses": {"200": {"description": "The record as you may see it",
                                  "content": json_content(ctx.entity_ref(e)),
                                  "headers": {"ETag": {"schema": {"type": "string"}}}},
                          **problems(401, 403, 404)}}


@describes("api.update_record", each_entity)
def _update(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"update_{e}", "summary": f"Change a {ctx.title(e)} record",
            "tags": [e], "parameters": [if_match_parameter(required=False)],
            "description": "Needs If-Match (or `row_version` in the body): 428 without, "
                           "409 when stale. `null` clears a nullable field.",
            "requestBody": {"required": True,
                            "content": json_content(ctx.entity_ref(e, "update"))},
            "responses": {"200": {"description": "Updated",
                                  "content": json_content(ctx.entity_ref(e)),
                                  "headers": {"ETag": {"schema": {"type": "string"}}},
                                  "links": record_links(ctx, e, _ID)},
                          **problems(400, 401, 403, 404, 409, 413, 415, 422, 428)}}


@describes("api.delete_record", each_entity)
def _delete(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"delete_{e}", "summary": f"Delete a {ctx.title(e)} record",
            "description": "A soft delete: the row and its history stay. Without If-Match "
                           "it is unconditional; with a stale one it is 409.",
            "tags": [e], "parameters": [if_match_parameter(required=False)],
            "responses": {"204": {"description": "Deleted"},
                          **problems(401, 403, 404, 409, 422)}}


@describes("api.timeline", each_entity)
def _timeline(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"timeline_{e}", "summary": f"History of a {ctx.title(e)}",
            "tags": [e],
            "responses": {"200": {"description": "What happened, oldest first",
                                  "content": json_content({
                                      "type": "object", "required": ["items"],
                                      "properties": {"items": {
                                          "type": "array", "items": _TIMELINE_ITEM}}})},
                          **problems(401, 403, 404)}}


# ------------------------------------------------------------------ the API itself


@describes("api.openapi")
def _openapi(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "openapi", "summary": "This document", "tags": ["api"],
            "security": [],
            "responses": {"200": {"description": "The OpenAPI 3.1 document",
                                  "content": json_content({"type": "object"})}}}


@describes("api.docs")
def _docs(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "docs", "summary": "This document as a readable page",
            "tags": ["api"], "security": [],
            "responses": {"200": {"description": "Swagger UI",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}}}


@describes("api.me")
def _me(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    strings = {"type": "array", "items": {"type": "string"}}
    return {"operationId": "me", "summary": "Who the token belongs to", "tags": ["api"],
            "responses": {"200": {"description": "The caller", "content": json_content({
                "type": "object", "required": ["id", "name", "roles", "scopes"],
                "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                               "roles": strings, "scopes": strings}})},
                **problems(401)}}


@describes("api.revoke_current_token")
def _revoke_current_token(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "revoke_current_token", "summary": "Revoke the token of this request",
            "description": "From the next request on, this token is refused (401); the "
                           "user's other tokens keep working.", "tags": ["api"],
            "responses": {"204": {"description": "Revoked"}, **problems(401)}}


_FILE = {"type": "object", "required": ["id", "filename", "size", "content_type", "sha256"],
         "properties": {"id": {"type": "string"}, "filename": {"type": "string"},
                        "size": {"type": "integer", "minimum": 0},
                        "content_type": {"type": "string"}, "sha256": {"type": "string"}}}


@describes("api.upload_file")
def _upload(ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "upload_file", "summary": "Upload a file for an attachment field",
            "tags": ["files"],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": {"description": "Stored; put its id in an attachment field",
                                  "content": json_content(ctx.shared("File", _FILE)),
                                  "links": {"download": {
                                      "operationId": "download_file",
                                      "parameters": {"file_id": _ID}}}},
                          **problems(401, 403, 413, 415, 422)}}


@describes("api.download_file")
def _download(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "download_file", "summary": "Download a stored file",
            "tags": ["files"],
            "responses": {"200": {"description": "The file (as an attachment)",
                                  "content": {"*/*": {"schema": {
                                      "type": "string", "format": "binary"}}}},
                          **problems(401, 403, 404)}}
