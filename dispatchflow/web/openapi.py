"""The OpenAPI 3.1 document of the active app version, generated from its entities.

Component schemas are the JSON Schemas the forms layer builds for validation
(2020-12, which OpenAPI 3.1 uses as is), so the document and the validator can
never disagree.
"""

from __future__ import annotations

from typing import Any

from ..dsl.compiler import App
from ..forms.schema import entity_schema

PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "hint": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "properties": {"field": {"type": "string"},
                                             "code": {"type": "string"},
                                             "message": {"type": "string"}}}},
    },
    "required": ["type", "title", "status"],
}


def _component(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _problem_responses(*codes: int) -> dict[str, Any]:
    texts = {400: "Bad request or filter", 401: "Missing or invalid token", 403: "Not allowed",
             404: "Not found (or not visible to you)", 409: "Stale version",
             422: "Invalid fields", 428: "If-Match required"}
    return {str(c): {"description": texts[c], "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}} for c in codes}


_CACHE: dict[str, dict[str, Any]] = {}


def openapi_document(app: App) -> dict[str, Any]:
    """The document for ``app`` (built once per app version)."""
    doc = _CACHE.get(app.digest)
    if doc is None:
        doc = _CACHE[app.digest] = _document(app.digest, app)
    return doc


def _document(digest: str, app: App) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": PROBLEM}
    paths: dict[str, Any] = {}
    id_param = {"name": "id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}
    for name, entity in app.entities.items():
        title = entity.label.get("en") or name
        for mode, suffix in (("read", ""), ("create", "Create"), ("update", "Update")):
            schemas[f"{name}{suffix}"] = _component(entity_schema(app, name, mode))
        ref = {"$ref": f"#/components/schemas/{name}"}
        json_of = {"application/json": {"schema": ref}}
        paths[f"/api/v1/{name}"] = {
            "get": {
                "operationId": f"list_{name}", "summary": f"List {title} records",
                "tags": [name],
                "parameters": [
                    {"name": "filter", "in": "query", "schema": {"type": "string"},
                     "description": f"DSL condition, e.g. {name}.id > 10"},
                    {"name": "sort", "in": "query", "schema": {"type": "string"},
                     "description": "field name, '-' prefix for descending"},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "A page of records", "content": {
                    "application/json": {"schema": {
                        "type": "object", "required": ["items", "next_cursor"],
                        "properties": {"items": {"type": "array", "items": ref},
                                       "next_cursor": {"type": ["string", "null"]}}}}}},
                    **_problem_responses(400, 401, 403, 422)},
            },
            "post": {
                "operationId": f"create_{name}", "summary": f"Create a {title} record",
                "tags": [name],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{name}Create"}}}},
                "responses": {"201": {"description": "Created", "content": json_of,
                                      "headers": {"ETag": {"schema": {"type": "string"}}}},
                              **_problem_responses(401, 403, 422)},
            },
        }
        paths[f"/api/v1/{name}/{{id}}"] = {
            "parameters": [id_param],
            "get": {"operationId": f"get_{name}", "summary": f"One {title} record",
                    "tags": [name],
                    "responses": {"200": {"description": "The record", "content": json_of},
                                  **_problem_responses(401, 403, 404)}},
            "patch": {
                "operationId": f"update_{name}", "summary": f"Change a {title} record",
                "tags": [name],
                "parameters": [{"name": "If-Match", "in": "header", "required": True,
                                "schema": {"type": "string"},
                                "description": "the record's ETag (its row_version)"}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{name}Update"}}}},
                "responses": {"200": {"description": "Updated", "content": json_of},
                              **_problem_responses(401, 403, 404, 409, 422, 428)},
            },
            "delete": {"operationId": f"delete_{name}", "summary": f"Delete a {title} record",
                       "tags": [name],
                       "responses": {"204": {"description": "Deleted"},
                                     **_problem_responses(401, 403, 404, 409)}},
        }
        paths[f"/api/v1/{name}/{{id}}/timeline"] = {
            "parameters": [id_param],
            "get": {"operationId": f"timeline_{name}", "summary": f"History of a {title}",
                    "tags": [name],
                    "responses": {"200": {"description": "Audit entries, oldest first",
                                          "content": {"application/json": {"schema": {
                                              "type": "object", "required": ["items"],
                                              "properties": {"items": {
                                                  "type": "array",
                                                  "items": {"type": "object"}}}}}}},
                                  **_problem_responses(401, 403, 404)}},
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{app.title.get('en') or app.name} API",
                 "version": f"{app.version} ({digest[:12]})",
                 "description": "Generated from the active dispatchflow app version."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
