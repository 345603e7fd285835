"""OpenAPI descriptions of the flow side of the API and of the intake channels.

Registered into :data:`.openapi_operations.OPERATIONS` on import: actions, manual
assignment, dispatch explanations, SLA clocks, offers, escalation ladders
(:mod:`.api_flows`, :mod:`.api_escalations`) and the signed channel endpoints
(:mod:`.channels`).
"""

from __future__ import annotations

from typing import Any

from .openapi_context import DocContext, json_content, problems
from .openapi_operations import (
    Binding,
    describes,
    each_action,
    each_answer,
    each_flow_entity,
    each_ladder,
    each_mailbox,
    each_webhook,
    record_links,
)

_OBJECTS = {"type": "array", "items": {"type": "object"}}
_NO_VALUES = {"type": "object", "maxProperties": 0,
              "description": "this action takes no values: send {} or no body"}
_IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "the sender's delivery id: a repeat is answered 200 with "
                                   "the same record and creates nothing"}
_DELIVERY = {"type": "object", "required": ["id", "skipped", "duplicate"], "properties": {
    "id": {"type": ["integer", "null"]}, "skipped": {"type": "array"},
    "duplicate": {"type": "boolean"}}}


def _record_view(op_id: str, summary: str, tag: str, description: str,
                 schema: dict[str, Any]) -> dict[str, Any]:
    """A GET on one record that answers ``schema`` (or 401/403/404)."""
    return {"operationId": op_id, "summary": summary, "tags": [tag],
            "responses": {"200": {"description": description, "content": json_content(schema)},
                          **problems(401, 403, 404)}}


@describes("api.list_actions", each_flow_entity)
def _actions(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    action = {"type": "object", "required": ["action"],
              "properties": {"action": {"type": "string"}, "flow": {"type": "string"}}}
    return _record_view(f"actions_{e}", "The actions you may take now", e,
                        "Actions (role allowed, guard true)",
                        {"type": "object", "required": ["items"],
                         "properties": {"items": {"type": "array", "items": action}}})


def _action_result(ctx: DocContext, entity: str) -> dict[str, Any]:
    # The record as the actor may see it after the action; linked records may be
    # embedded (objects where GET has ids), so only its identity is fixed here.
    return {"type": "object", "required": ["states", "taken", "record"], "properties": {
        "states": {"type": "array", "items": {"type": "string"}}, "taken": _OBJECTS,
        "record": {"type": "object", "required": ["id", "row_version"], "properties": {
            "id": {"type": "integer"}, "row_version": {"type": "integer"}}}}}


@describes("api.post_action", each_action)
def _action(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e, action = b["entity"], b["action"]
    form = ctx.actions(e)[action]
    body = ctx.form_ref(form) if form else _NO_VALUES
    return {"operationId": f"action_{e}_{action}", "summary": f"Take the action {action}",
            "description": (f"The body is the values of the form {form}." if form else
                            "No values.") + " Nothing changes unless the answer is 200.",
            "tags": [e],
            "requestBody": {"required": False, "content": json_content(body)},
            "responses": {"200": {"description": "Taken: the new states and the record",
                                  "content": json_content(_action_result(ctx, e)),
                                  "links": record_links(ctx, e, "$request.path.record_id")},
                          **problems(401, 403, 404, 409, 413, 415, 422)}}


@describes("api.assign", each_flow_entity)
def _assign(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return {"operationId": f"assign_{e}", "summary": "Assign by hand, with a reason",
            "tags": [e],
            "requestBody": {"required": True, "content": json_content({
                "type": "object", "required": ["candidate", "reason"],
                "properties": {"candidate": {"type": "integer", "minimum": 1,
                                             "maximum": 2**63 - 1},
                               "reason": {"type": "string", "minLength": 1,
                                          "pattern": "\\S"}}})},
            "responses": {"200": {"description": "Assigned (a change of assignee is a "
                                                 "transfer)",
                                  "content": json_content({"type": "object"})},
                          **problems(401, 403, 404, 409, 413, 415, 422)}}


@describes("api.dispatch", each_flow_entity)
def _dispatch(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return _record_view(f"dispatch_{e}", "Dispatch rounds, candidates, offers", e,
                        "Every round with its decision and offers",
                        {"type": "object", "required": ["rounds"],
                         "properties": {"rounds": _OBJECTS}})


@describes("api.sla", each_flow_entity)
def _sla(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e = b["entity"]
    return _record_view(f"sla_{e}", "The SLA clocks now", e, "Clocks by name",
                        {"type": "object", "additionalProperties": {"type": "object"}})


@describes("api.acknowledge_escalation", each_ladder)
def _acknowledge(ctx: DocContext, b: Binding) -> dict[str, Any]:
    e, ladder = b["entity"], b["ladder"]
    return {"operationId": f"acknowledge_{e}_{ladder}",
            "summary": f"Acknowledge the escalation {ladder} (stops it)", "tags": [e],
            "responses": {"204": {"description": "Stopped (acknowledging twice is harmless)"},
                          **problems(401, 403, 404, 409)}}


@describes("api.my_offers")
def _offers(_ctx: DocContext, _b: Binding) -> dict[str, Any]:
    return {"operationId": "my_offers", "summary": "Your pending offers", "tags": ["offers"],
            "responses": {"200": {"description": "Pending offers, oldest first",
                                  "content": json_content({
                                      "type": "object", "required": ["items"],
                                      "properties": {"items": _OBJECTS}}),
                                  "links": {answer: {
                                      "operationId": f"{answer}_offer",
                                      "parameters": {"offer_id": "$response.body#/items/0/id"}}
                                      for answer in ("accept", "reject")}},
                          **problems(401)}}


@describes("api.answer_offer", each_answer)
def _answer(_ctx: DocContext, b: Binding) -> dict[str, Any]:
    answer = b["answer"]
    return {"operationId": f"{answer}_offer", "summary": f"{answer.capitalize()} an offer",
            "description": "The same as the record's action; losing a grab-pool race is 409.",
            "tags": ["offers"],
            "requestBody": {"required": False, "content": json_content({"type": "object"})},
            "responses": {"200": {"description": "Answered", "content": json_content({
                "type": "object", "required": ["states", "taken", "record"]})},
                **problems(401, 403, 404, 409, 413, 415, 422)}}


@describes("channels.webhook", each_webhook)
def _webhook(ctx: DocContext, b: Binding) -> dict[str, Any]:
    ch = next(c for c in ctx.channels("webhook") if c.name == b["name"])
    keys = {r.external: {"description": f"becomes {ch.entity}.{r.field}"} for r in ch.rules}
    return {"operationId": f"channel_{ch.name}", "summary": f"Webhook {ch.name}",
            "description": f"A JSON object in the sender's terms, mapped to a {ch.entity} "
                           f"record; at most {ch.max_body_bytes // 1024} KB.",
            "tags": ["channels"], "security": [{ctx.signature_scheme(ch): []}],
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": json_content(
                {"type": "object", "properties": keys})},
            "responses": _delivery_responses(), }


@describes("channels.email", each_mailbox)
def _email(ctx: DocContext, b: Binding) -> dict[str, Any]:
    ch = next(c for c in ctx.channels("email") if c.name == b["name"])
    raw = {"schema": {"type": "string", "format": "binary"}}
    return {"operationId": f"channel_{ch.name}_email", "summary": f"E-mail channel {ch.name}",
            "description": f"A raw RFC 822 message as a mail gateway forwards it, mapped to a "
                           f"{ch.entity} record.",
            "tags": ["channels"], "security": [{ctx.signature_scheme(ch): []}],
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {
                "message/rfc822": raw, "application/octet-stream": raw}},
            "responses": {**_delivery_responses(), **problems(415)}}


def _delivery_responses() -> dict[str, Any]:
    return {"201": {"description": "A new record", "content": json_content(_DELIVERY)},
            "200": {"description": "A repeated delivery: the same record",
                    "content": json_content(_DELIVERY)},
            **problems(400, 401, 404, 413, 422, 503)}
