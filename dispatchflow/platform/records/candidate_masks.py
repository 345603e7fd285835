"""What a response may show of dispatch candidates: the pool records behind rounds and offers.

A dispatch round ranks records of a pool entity (technicians); its decision
carries each candidate's id, score and score terms (distance, load, rating),
and its offers name their candidates. That is data about the pool's records,
so it obeys the pool entity's authorization, as every linked record does
(the one mask, :meth:`~.authz.Authorizer.mask`):

* an actor who may not read the pool entity (a customer) sees no candidate
  details: a round keeps its policy, attempt, status and times; an offer its
  mode, state and times; a dispatch entry of a timeline its kind and time;
* an actor who may read the pool but not some of its rows (a dispatcher
  limited to a region) sees those candidates cut to their ids: no score, no
  terms, as a linked record it may not read is cut to its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .actors import Actor

if TYPE_CHECKING:
    from ..assembly import Runtime

#: Timeline entry kinds that name candidates (dispatch rounds, offers, hand assignment).
CANDIDATE_NOTE_KINDS = frozenset({"dispatch", "reassign"})

#: What a round shows of itself when its candidates are hidden.
_ROUND_KEEPS = ("id", "policy", "attempt", "status", "requested_at", "decided_at")
#: What an offer shows of itself when its candidate is hidden.
_OFFER_KEEPS = ("id", "mode", "state", "created_at", "expires_at", "answered_at")


class CandidateMask:
    """Masks dispatch rounds, offers and dispatch timeline entries of one ``entity``
    for one actor (see module docs)."""

    def __init__(self, rt: Runtime, actor: Actor, entity: str) -> None:
        self.rt = rt
        self.actor = actor
        self.pools = {p.name: p.pool for p in rt.app.policies.values() if p.entity == entity}

    def pool_readable(self, policy: str | None) -> bool:
        """Whether the actor may read the pool entity of ``policy`` (all pools: None)."""
        pools = set(self.pools.values()) if policy is None else {self.pools.get(policy)}
        return all(p is not None and self.rt.authz.can(self.actor, p, "read") for p in pools)

    def readable_ids(self, pool: str, ids: Iterable[Any]) -> set[int]:
        """Those of ``ids`` (records of ``pool``) the actor may read (row filter, not deleted)."""
        wanted = {int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)}
        if not wanted or self.actor.is_system:
            return wanted
        table = self.rt.tables[pool]
        query = select(table.c.id).where(table.c.id.in_(wanted), table.c.deleted_at.is_(None))
        clause = self.rt.authz.row_clause(self.actor, pool, "read", table, self.rt.tables,
                                          now=self.rt.clock())
        if clause is not None:
            query = query.where(clause)
        with self.rt.engine.connect() as conn:
            return {int(i) for i in conn.execute(query).scalars()}

    def round(self, rnd: Mapping[str, Any], offers: list[dict[str, Any]]) -> dict[str, Any]:
        """A round (``decision`` as stored) and its offers, as the actor may see them."""
        policy = rnd.get("policy")
        if not self.pool_readable(policy):
            return {**{k: rnd.get(k) for k in _ROUND_KEEPS},
                    "decision": {"policy": policy} if rnd.get("decision") else None,
                    "offers": [{k: o.get(k) for k in _OFFER_KEEPS} for o in offers]}
        decision = rnd.get("decision")
        ranked = (decision or {}).get("ranked") or []
        readable = self.readable_ids(self.pools[str(policy)],
                                     [c.get("id") for c in ranked] +
                                     [o.get("candidate") for o in offers])
        if decision:
            decision = {**decision, "ranked": [
                c if c.get("id") in readable else {"id": c.get("id")} for c in ranked]}
        return {**{k: rnd.get(k) for k in _ROUND_KEEPS}, "decision": decision,
                "offers": [o if o.get("candidate") in readable else {**o, "score": None}
                           for o in offers]}

    def note(self, item: dict[str, Any]) -> dict[str, Any]:
        """A timeline entry, its candidate details dropped when the actor may not read the pool."""
        if item.get("kind") not in CANDIDATE_NOTE_KINDS or self.pool_readable(None):
            return item
        return {**item, "summary": item["kind"], "detail": {}}
