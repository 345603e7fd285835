"""What operation descriptions read while the OpenAPI document is built.

One :class:`DocContext` per build: the app version (entities, forms, compiled
flows, channels) and the document's components, which descriptions register
as they refer to them (entity and form schemas, shared response shapes,
security schemes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...dsl.compiler import App
from ...flows.model import CompiledFlow
from ...forms.schema import cached_entity_schema, cached_form_schema
from ...platform.assembly import Runtime
from ...platform.intake.channels import Channel, channel

#: The problem document (RFC 9457) every error response carries.
PROBLEM: dict[str, Any] = {
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

#: What each error status means in this API (the text of its response).
PROBLEM_TEXTS = {
    400: "Bad request: a filter that does not parse, a malformed body or message",
    401: "Missing or invalid credentials (token or channel signature)",
    403: "Not allowed for your roles or token scopes",
    404: "Not found (or not visible to you)",
    405: "Method not allowed",
    409: "Conflict: a stale version, an action not possible now, an offer already taken",
    413: "The body is too large",
    415: "Unsupported Content-Type",
    422: "Invalid fields or parameters (per-field errors; nothing was written)",
    428: "If-Match (or row_version) required",
    503: "No active app version, or the channel is not configured",
}

_SYSTEM_KEYS = ("$schema", "$id")


@dataclass
class DocContext:
    """The app version being described and the components registered so far."""

    app: App
    flows: dict[str, CompiledFlow]
    schemas: dict[str, Any] = field(default_factory=lambda: {"Problem": PROBLEM})
    security_schemes: dict[str, Any] = field(default_factory=lambda: {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "an API token: `dispatchflow token create USER`"}})

    @classmethod
    def of(cls, rt: Runtime) -> DocContext:
        """The context of the runtime's active version."""
        return cls(rt.app, dict(rt.flows_of(rt.version_number).flows))

    # -- app version
    def entities(self) -> list[str]:
        """Every entity, in bundle order."""
        return list(self.app.entities)

    def flow_entities(self) -> list[str]:
        """Entities that have a flow (actions, SLA clocks, dispatch, escalations)."""
        return [e for e in self.app.entities if any(f.entity == e for f in self.flows.values())]

    def actions(self, entity: str) -> dict[str, str | None]:
        """The flow actions of ``entity`` and the form each takes (None: no form)."""
        out: dict[str, str | None] = {}
        for flow in self.flows.values():
            if flow.entity != entity:
                continue
            for t in flow.transitions():
                if t.action:
                    out[t.action] = out.get(t.action) or t.form
        return out

    def ladders(self, entity: str) -> list[str]:
        """The escalation ladders of ``entity``'s flows."""
        return [name for flow in self.flows.values() if flow.entity == entity
                for name in flow.escalations]

    def channels(self, kind: str) -> list[Channel]:
        """The intake channels of ``kind`` (``webhook`` or ``email``)."""
        return [channel(self.app, name) for name in self.app.channels
                if channel(self.app, name).kind == kind]

    def title(self, entity: str) -> str:
        """The entity's English label (its name without one)."""
        return self.app.entities[entity].label.get("en") or entity

    # -- components
    def entity_ref(self, entity: str, mode: str = "read") -> dict[str, str]:
        """A reference to ``entity``'s schema in ``mode``, registering it."""
        name = entity + {"read": "", "create": "Create", "update": "Update"}[mode]
        if name not in self.schemas:
            self.schemas[name] = _component(cached_entity_schema(self.app, entity, mode))
        return {"$ref": f"#/components/schemas/{name}"}

    def form_ref(self, form: str) -> dict[str, str]:
        """A reference to the values of ``form`` as an action takes them (update mode)."""
        name = f"{form}Form"
        if name not in self.schemas:
            self.schemas[name] = _component(cached_form_schema(self.app, form, "update"))
        return {"$ref": f"#/components/schemas/{name}"}

    def shared(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        """A reference to a named shared schema, registering it."""
        self.schemas.setdefault(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}

    def signature_scheme(self, ch: Channel) -> str:
        """The security scheme of a channel's HMAC signature header, registered."""
        name = f"channel_{ch.name}"
        self.security_schemes.setdefault(name, {
            "type": "apiKey", "in": "header", "name": ch.signature_header,
            "description": "sha256=<hex HMAC-SHA256 of the raw body with the channel's "
                           f"secret ({ch.secret_env or 'secret_env'})>"})
        return name

    def tags(self) -> list[dict[str, str]]:
        """One tag per entity (its label) plus the cross-entity groups."""
        tags = [{"name": e, "description": self.title(e)} for e in self.app.entities]
        return tags + [{"name": "offers", "description": "Offers made to you"},
                       {"name": "files", "description": "Uploads for attachment fields"},
                       {"name": "channels", "description": "Signed intake channels"},
                       {"name": "api", "description": "The API itself"}]


def problems(*codes: int) -> dict[str, Any]:
    """Error responses for ``codes``, each a problem document."""
    return {str(c): {"description": PROBLEM_TEXTS[c], "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for c in codes}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """``content`` of an ``application/json`` body."""
    return {"application/json": {"schema": schema}}


def _component(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _SYSTEM_KEYS}
