"""REST API ``/api/v1``, the flow side: actions, offers, dispatch explanations, SLA clocks.

Routes live on the same blueprint as :mod:`.api` (same token authentication,
problem+json errors and default-deny authorization).

- ``GET  /<entity>/<id>/actions``: the actions the caller may take now;
- ``POST /<entity>/<id>/actions/<action>``: take one (JSON body: the action
  form's values; empty, ``{}`` or ``null`` for an action without a form, while an
  action with a form checks its required fields whatever the body); 200 with the
  new states, 403/404/409/422 otherwise, and nothing is changed;
- ``POST /<entity>/<id>/assign``: assign by hand (``{"candidate": id, "reason":
  "...", "override": false}``); 409 with the failing hard filters unless
  ``override`` is true;
- both take an optional ``If-Match: "<row_version>"`` (or ``row_version`` in the
  body): a record changed since gives 409;
- ``GET  /<entity>/<id>/dispatch``: dispatch rounds, decisions and offers, and the
  manual assignments (``assignments``);
- ``GET  /<entity>/<id>/sla``: SLA clocks now;
- ``GET  /offers``: the caller's pending offers (technicians);
- ``POST /offers/<id>/accept`` and ``/reject``: answer one (the same as the
  record's ``accept`` / ``reject`` actions).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from ...errors import NotFoundError, ValidationError
from ...forms.schema import INT64_MAX
from ...platform.dispatch import explain
from ...platform.dispatch.manual import assign_by_hand, assignments_of
from ...platform.runtime.runner import take_action
from ...platform.store.db import offers
from ...platform.store.jsonvalues import json_value
from ..auth.views import runtime
from ..i18n import locale
from .records import _actor, _expected_version, _PreconditionRequired, bp


@bp.get("/<entity>/<int:record_id>/actions")
def list_actions(entity: str, record_id: int) -> Response:
    return jsonify({"items": explain.available_actions(runtime(), _actor(), entity,
                                                       record_id)})


@bp.post("/<entity>/<int:record_id>/actions/<action>")
def post_action(entity: str, record_id: int, action: str) -> Response:
    return jsonify(_take(entity, record_id, action, _form_body()))


@bp.post("/<entity>/<int:record_id>/assign")
def assign(entity: str, record_id: int) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("candidate"), int) \
            or isinstance(body.get("candidate"), bool) or not 1 <= body["candidate"] <= INT64_MAX:
        raise ValidationError("send {\"candidate\": <id>, \"reason\": \"...\"}")
    override = body.get("override", False)
    if not isinstance(override, bool):
        raise ValidationError("override must be true or false")
    reason = body.get("reason")
    return jsonify(assign_by_hand(runtime(), _actor(), entity, record_id, body["candidate"],
                                  reason if isinstance(reason, str) else "",
                                  override=override, locale=locale(),
                                  expected_version=_seen_version(body)))


@bp.get("/<entity>/<int:record_id>/dispatch")
def dispatch(entity: str, record_id: int) -> Response:
    rt = runtime()
    history = explain.dispatch_history(rt, _actor(), entity, record_id)
    return jsonify({**history, "assignments": assignments_of(rt, _actor(), entity, record_id)})


@bp.get("/<entity>/<int:record_id>/sla")
def sla(entity: str, record_id: int) -> Response:
    return jsonify(explain.sla_clocks(runtime(), _actor(), entity, record_id))


@bp.get("/offers")
def my_offers() -> Response:
    return jsonify({"items": explain.offers_for(runtime(), _actor())})


@bp.post("/offers/<int:offer_id>/<any(accept, reject):answer>")
def answer_offer(offer_id: int, answer: str) -> Response:
    rt = runtime()
    with rt.engine.connect() as conn:
        row = conn.execute(select(offers.c.entity, offers.c.record_id)
                           .where(offers.c.id == offer_id)).first()
    if row is None:
        raise NotFoundError(f"no offer {offer_id}")
    return jsonify(_take(row[0], int(row[1]), answer, _form_body()))


def _form_body() -> dict[str, Any]:
    """The action's form values: the JSON object body without ``row_version`` (no body
    and ``null`` are no values)."""
    if not request.data or request.data.strip() == b"null":
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object of form values, or empty")
    return {k: v for k, v in data.items() if k != "row_version"}


def _seen_version(body: Any) -> int | None:
    """The ``row_version`` the caller saw (If-Match, or ``row_version`` in the body)."""
    try:
        return _expected_version(body)
    except _PreconditionRequired:
        return None


def _take(entity: str, record_id: int, action: str, values: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    result = take_action(rt, _actor(), entity, record_id, action, values or None,
                         locale=locale(), expected_version=_seen_version(
                             request.get_json(silent=True)))
    # The record embeds its linked records (customer, assignee...): the one mask
    # recurses into them, each by its own entity's rules and row filter.
    return {"states": list(result.states),
            "taken": [{k: json_value(v) for k, v in t.items()} for t in result.taken],
            "record": rt.records.present(_actor(), entity, result.record)}
