"""The OpenAPI 3.1 document, generated from the app's own routes and the active version.

Every rule of Flask's URL map under ``/api/v1`` and ``/channels`` becomes
operations here: its methods and path variables come from the rule itself, what
each operation takes and answers from the description registered for its
endpoint (:mod:`.openapi_operations`). A variable that names something of the
app version (``<entity>``, ``<action>``, ``<ladder>``, a channel ``<name>``) is
expanded into one path per thing, so each gets its own schemas; the others
become path parameters described by their converter. A route nobody described
still appears, marked ``x-undocumented`` (tests/web/test_openapi.py fails on it),
so the document cannot silently drift from the routes.

Component schemas are the JSON Schemas the forms layer builds for validation
(2020-12, which OpenAPI 3.1 uses as is), so the document and the validator
cannot disagree.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.routing import Map, Rule

from ...forms.schema import version_cached
from ...platform.assembly import Runtime
from . import openapi_flow_operations  # noqa: F401 (registers its descriptions)
from .openapi_context import DocContext
from .openapi_operations import OPERATIONS, Binding

#: URL prefixes whose routes the document describes.
DOCUMENTED_PREFIXES = ("/api/v1/", "/channels/")

#: HTTP methods an operation can have (Flask adds HEAD and OPTIONS to every rule).
METHODS = ("get", "put", "post", "patch", "delete")

_VARIABLE = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def openapi_document(rt: Runtime, url_map: Map) -> dict[str, Any]:
    """The document for the runtime's active version and ``url_map`` (built once per
    version; do not modify it)."""
    routes = tuple((r.rule, r.endpoint, tuple(sorted(r.methods or ())))
                   for r in documented_rules(url_map))
    return version_cached(rt.app, ("openapi", routes),
                          lambda: build_document(DocContext.of(rt), url_map))


def documented_rules(url_map: Map) -> list[Rule]:
    """The rules the document covers, in a stable order."""
    return sorted((r for r in url_map.iter_rules() if r.rule.startswith(DOCUMENTED_PREFIXES)),
                  key=lambda r: (r.rule, sorted(r.methods or ())))


def build_document(ctx: DocContext, url_map: Map) -> dict[str, Any]:
    """The whole document: one path item per expanded rule, components, security."""
    paths: dict[str, Any] = {}
    for rule in documented_rules(url_map):
        methods = [m for m in METHODS if m.upper() in (rule.methods or ())]
        described = OPERATIONS.get(rule.endpoint)
        bindings = described.bindings(ctx) if described is not None else [{}]
        for binding in bindings:
            path, params = _template(rule, binding)
            item = paths.setdefault(path, {})
            for method in methods:
                if described is None:
                    op = _undocumented(rule, method)
                else:
                    op = described.build(ctx, binding)
                op = {**op, "parameters": params + op.get("parameters", [])}
                if not op["parameters"]:
                    del op["parameters"]
                item[method] = op
    app = ctx.app
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{app.title.get('en') or app.name} API",
                 "version": f"{app.version} ({app.digest[:12]})",
                 "description": "Generated from the routes of dispatchflow and the active "
                                "app version. Errors are problem documents (RFC 9457)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": ctx.tags(),
        "components": {"schemas": ctx.schemas, "securitySchemes": ctx.security_schemes},
        "paths": dict(sorted(paths.items())),
    }


def _template(rule: Rule, binding: Binding) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of ``rule`` with ``binding``'s values filled in, and the
    parameters of the variables left."""
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name in binding:
            return binding[name]
        schema = _converter_schema(match["conv"], match["args"])
        param = {"name": name, "in": "path", "required": True, "schema": schema}
        if schema["type"] == "integer":
            param["example"] = 1  # the first record: what a client tries first
        params.append(param)
        return "{" + name + "}"

    return _VARIABLE.sub(replace, rule.rule), params


def _converter_schema(converter: str | None, args: str | None) -> dict[str, Any]:
    if converter == "int":
        return {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    if converter == "any":
        return {"type": "string",
                "enum": [a.strip().strip("'\"") for a in (args or "").split(",")]}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _undocumented(rule: Rule, method: str) -> dict[str, Any]:
    return {"operationId": f"{rule.endpoint.replace('.', '_')}_{method}",
            "summary": f"{method.upper()} {rule.rule} (not described)",
            "x-undocumented": True,
            "responses": {"default": {"description": "see the code"}}}
