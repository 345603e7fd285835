"""Read-only views of what the platform decided for a record, for the API, console and CLI.

- :func:`dispatch_history`: every dispatch round of a record with its decision
  (ranked candidates with each score term, exclusion counts by reason) and the
  offers made and how they ended;
- :func:`sla_clocks`: the record's SLA clocks now (status, deadline, elapsed);
- :func:`available_actions`: the flow actions an actor may take now (buttons);
- :func:`offers_for`: the pending offers of a pool member (a technician's inbox of
  orders to accept or reject).

Each checks that the actor may read the record (default deny) through the
records service before reading anything else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..records.actors import Actor
from ..records.candidate_masks import CandidateMask
from ..runtime.step import Step
from ..store.db import dispatch_rounds, offers
from ..store.jsonvalues import json_value

if TYPE_CHECKING:
    from ..assembly import Runtime


def dispatch_history(rt: Runtime, actor: Actor, entity: str, record_id: int) -> dict[str, Any]:
    """Rounds, decisions and offers of a visible record, oldest first; candidates the
    actor may not read are masked (:class:`~.candidate_masks.CandidateMask`)."""
    rt.records.get(actor, entity, record_id)  # NotFoundError unless visible
    with rt.engine.connect() as conn:
        rounds = conn.execute(select(dispatch_rounds).where(dispatch_rounds.c.entity == entity)
                              .where(dispatch_rounds.c.record_id == record_id)
                              .order_by(dispatch_rounds.c.id)).mappings().all()
        made = conn.execute(select(offers).where(offers.c.entity == entity)
                            .where(offers.c.record_id == record_id)
                            .order_by(offers.c.id)).mappings().all()
    by_round: dict[int, list[dict[str, Any]]] = {}
    for o in made:
        by_round.setdefault(o["round_id"], []).append({
            "id": o["id"], "candidate": o["candidate_id"], "mode": o["mode"],
            "state": o["state"], "rank": o["rank"], "score": o["score"],
            "created_at": _iso(o["created_at"]), "expires_at": _iso(o["expires_at"]),
            "answered_at": _iso(o["answered_at"]), "reason": o["reason"]})
    mask = CandidateMask(rt, actor, entity)
    return {"rounds": [mask.round({
        "id": r["id"], "policy": r["policy"], "attempt": r["attempt"], "status": r["status"],
        "requested_at": _iso(r["requested_at"]), "decided_at": _iso(r["decided_at"]),
        "decision": r["decision"]}, by_round.get(r["id"], [])) for r in rounds]}


def sla_clocks(rt: Runtime, actor: Actor, entity: str, record_id: int) -> dict[str, Any]:
    """The record's SLA clocks as of the runtime's clock."""
    from ..runtime.sla_clocks import clocks_for_record

    rt.records.get(actor, entity, record_id)
    with rt.engine.connect() as conn:
        step = Step.open(rt, conn, entity, record_id, rt.clock())
        if step is None:
            return {}
        clocks = clocks_for_record(step)
    return {name: {k: json_value(v) for k, v in state.items()} for name, state in clocks.items()}


def available_actions(rt: Runtime, actor: Actor, entity: str,
                      record_id: int) -> list[dict[str, Any]]:
    """The flow actions ``actor`` may take on the record now: those the flow offers the
    actor's roles (guard true) that :func:`~.action_access.check_action` allows, so
    each one listed succeeds when taken (with valid form values). NotFoundError
    unless the actor can read the record or holds a pending offer of it."""
    from ...errors import NotFoundError
    from ..runtime.instances import action_options
    from .access import may_take, standing_of

    with rt.engine.connect() as conn:
        step = Step.open(rt, conn, entity, record_id, rt.clock())
        if step is None or step.stored.get("deleted_at") is not None:
            raise NotFoundError(f"no {entity} {record_id}")
        standing = standing_of(step, actor)
        if not standing.visible and not standing.pending:
            raise NotFoundError(f"no {entity} {record_id}")
        return [{"flow": flow, "action": option.action, "label": option.label,
                 "form": option.form, "target": option.target}
                for flow, option in action_options(step, frozenset(actor.roles))
                if may_take(step, actor, option.action, standing)]


def offers_for(rt: Runtime, actor: Actor) -> list[dict[str, Any]]:
    """Pending offers made to the pool record the actor is (empty for anyone else)."""
    out: list[dict[str, Any]] = []
    candidate_fields = [n for n, f in rt.app.user.fields.items() if f.kind == "reference"]
    ids = [actor.attributes.get(n) for n in candidate_fields]
    ids = [i.get("id") if isinstance(i, dict) else i for i in ids if i is not None]
    if not ids:
        return out
    with rt.engine.connect() as conn:
        rows = conn.execute(select(offers).where(offers.c.candidate_id.in_(ids))
                            .where(offers.c.state == "pending")
                            .order_by(offers.c.expires_at, offers.c.id)).mappings().all()
    pools = {p.pool for p in rt.app.policies.values()}
    for r in rows:
        if not _is_candidate(rt, actor, r["candidate_id"], pools):
            continue
        out.append({"id": r["id"], "entity": r["entity"], "record_id": r["record_id"],
                    "mode": r["mode"], "rank": r["rank"], "expires_at": _iso(r["expires_at"]),
                    "created_at": _iso(r["created_at"])})
    return out


def _is_candidate(rt: Runtime, actor: Actor, candidate: int, pools: set[str]) -> bool:
    for name, f in rt.app.user.fields.items():
        value = actor.attributes.get(name)
        value = value.get("id") if isinstance(value, dict) else value
        if f.kind == "reference" and f.reference in pools and value == candidate:
            return True
    return False


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
