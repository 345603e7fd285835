"""Dispatch on stored records: rounds, offers, accept/reject, expiry, re-match, escalation.

A ``request dispatch using POLICY`` effect opens a dispatch *round*
(``df_dispatch_rounds``) and emits ``<entity>.dispatch_requested``; the
``dispatch`` queue then runs :func:`run_round`: it ranks the policy's pool with
the pure engine (``rules.dispatch``), stores the decision with every candidate's
score terms and the exclusion counts, and makes offers (``df_offers``) with an
accept window — one at a time, to the top k at once, or to the whole qualified
set as a grab pool — then emits ``<entity>.offered``. Offers are answered by
the flow actions ``accept`` and ``reject``; an offer not answered in time
expires (an ``offer`` timer). When every offer of a round failed, the next
round offers to candidates not tried yet, until the policy's retries are used
up; then the record is escalated (``<entity>.escalated``, with the reason). No
qualified candidate at all escalates at once, with the exclusion counts.

Every write happens in a :class:`~.step.Step` on the record, under its row
lock, so exactly one offer can be accepted per record and concurrent claims on
a grab-pool order have one winner.

Candidate profiles: when the pool entity declares any of the fields
``open_tasks``, ``rejected_count``, ``expired_count``, ``completed_count`` or
``consecutive_anomalies`` (integers), the platform keeps them: accepting adds
an open task, a rejection or an expiry counts as an anomaly, the record's
``completed`` event closes the task and clears the anomalies, ``cancelled``
closes it. ``rating_30d`` and ``avg_handling_minutes`` are recomputed from the
last 30 days of the candidate's records on completion and on a new rating
(:mod:`.profiles`). Each change is an ``updated`` event of the candidate, so rules on
the pool entity (e.g. "three anomalies in a row raise an alert") see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update

from ...errors import ConflictError
from ...rules.dispatch import CandidatePool, decide, search_box
from ..records.actors import Actor
from ..runtime.facts import flatten
from ..runtime.queue import Jobs
from ..runtime.step import SYSTEM_USER, Step, insert_row
from ..store.db import audit_log, dispatch_rounds, offers, outbox
from ..store.jsonvalues import json_value
from ..store.storage import as_utc, from_row

if TYPE_CHECKING:
    from ..assembly import Runtime

#: Events the dispatch engine emits on the dispatched record (bare names).
REQUESTED, OFFERED, ESCALATED = "dispatch_requested", "offered", "escalated"

#: Profile fields of the pool entity the platform keeps, when declared.
PROFILE_FIELDS = ("open_tasks", "rejected_count", "expired_count", "completed_count",
                  "consecutive_anomalies")

#: Flow actions that answer an offer (a pending offer grants these and nothing else).
ACCEPT, REJECT = "accept", "reject"
OFFER_ACTIONS = frozenset({ACCEPT, REJECT})

#: The flow action a manual assignment takes (docs/bundle.md, "Manual assignment").
ASSIGN_ACTION = "assign"

#: Label under which candidates tried in earlier rounds are counted.
TRIED_LABEL = "already tried / 已尝试"


# ---------------------------------------------------------------------- requests

def request_dispatch(step: Step, policy: str | None, by: str, attempt: int = 1) -> int | None:
    """Open a dispatch round for the step's record (called at the step's flush)."""
    name = policy or _default_policy(step)
    if name is None:
        step.note("error", f"{by}: no dispatch policy for {step.entity}", {})
        return None
    withdraw_pending(step, "a new dispatch was requested")
    batch = batch_settings(step.rt)
    batched = attempt == 1 and name in batch.get("policies", ())
    group = batch.get("group_by")
    result = step.conn.execute(dispatch_rounds.insert().values(
        entity=step.entity, record_id=step.record_id, policy=name, attempt=attempt,
        status="batched" if batched else "pending", requested_at=step.utc,
        batch_key=str(flatten(step.record.get(group))) if batched and group else None))
    assert result.inserted_primary_key is not None
    round_id = int(result.inserted_primary_key[0])
    if attempt == 1:
        step.emit(REQUESTED, by, {"policy": name, "round": round_id})
    step.note("dispatch", f"dispatch requested with policy {name} (try {attempt})",
              {"policy": name, "round": round_id, "by": by})
    if not batched:  # a batched round waits for the scheduler to gather its burst
        step.after_commit("dispatch", "dispatch_round", step.entity, step.record_id, round_id)
    return round_id


def batch_settings(rt: Runtime) -> dict[str, Any]:
    """The app's ``dispatch.batch`` settings (empty when bursts are not batched)."""
    return dict((rt.app.dispatch or {}).get("batch") or {})


def _default_policy(step: Step) -> str | None:
    names = [p.name for p in step.rt.app.policies.values() if p.entity == step.entity]
    return names[0] if len(names) == 1 else None


def run_round(rt: Runtime, entity: str, record_id: int, round_id: int,
              then: Callable[[Step, Jobs], Jobs] | None = None) -> Jobs:
    """Decide and offer for a pending round (idempotent: a decided round is left alone).

    Returns the jobs to run after its commit (the caller sends them on). ``then``
    runs last in the same transaction, with the round's step (which holds the
    record's lock) and those jobs, and returns the jobs instead.
    """
    with rt.engine.begin() as conn:
        row = conn.execute(select(dispatch_rounds).where(dispatch_rounds.c.id == round_id)) \
            .mappings().first()
        if row is None or row["status"] != "pending":
            return []
        # The decision is made as of the request, so it does not depend on queue delays.
        step = Step.open(rt, conn, entity, record_id, as_utc(row["requested_at"]))
        if step is None:
            return []
        row = conn.execute(select(dispatch_rounds).where(dispatch_rounds.c.id == round_id)) \
            .mappings().one()  # re-read under the record lock
        if row["status"] != "pending":
            return []
        decide_and_offer(step, dict(row))
        step.flush()
        return step.jobs if then is None else then(step, step.jobs)


def decide_and_offer(step: Step, rnd: dict[str, Any], *, forced: Any = None,
                     batch: dict[str, Any] | None = None,
                     pool: CandidatePool | None = None) -> None:
    """Rank the pool for the round's record and make the offers (or escalate).

    ``forced`` is the candidate a batch matching chose (offered alone, whatever
    the strategy), ``batch`` what the decision records about that batch.
    """
    rt = step.rt
    policy_decl = rt.app.policies.get(rnd["policy"])
    if policy_decl is None:
        _escalate(step, rnd, f"unknown dispatch policy {rnd['policy']}", None)
        return
    policy = rt.rules.policy(policy_decl.name)
    tried = tried_candidates(step)
    if pool is None:
        pool = CandidatePool.from_records(candidates_near(step, policy_decl.pool, policy))
    decision = decide(policy, step.record, pool, step.now, exclude=frozenset(tried))
    summary = decision.summary(rt.app.default_locale)
    offer = policy_decl.offer
    strategy = offer.strategy if offer else "one_at_a_time"
    ranked = list(decision.ranked)
    if forced is not None:
        chosen = [c for c in ranked if c.id == forced][:1] or ranked[:1]
    elif strategy == "one_at_a_time":
        chosen = ranked[:1]
    elif strategy == "broadcast":
        chosen = ranked[:max(1, offer.top_k if offer else 1)]
    else:
        chosen = ranked
    step.conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.id == rnd["id"])
                      .values(decision={**decision.to_dict(), **({"batch": batch}
                                                                   if batch else {})},
                              decided_at=step.utc,
                              status="offered" if chosen else "escalated"))
    step.note("dispatch", f"policy {policy_decl.name}: {len(ranked)} qualified; {summary}",
              {"round": rnd["id"], "policy": policy_decl.name,
               "top": [c.id for c in ranked[:5]]})
    if not chosen:
        _escalate(step, rnd, summary, policy_decl.offer.escalate_to_role
                  if policy_decl.offer else None)
        return
    window = policy.accept_within(step.record, step.now)
    expires = step.now + window if window is not None else None
    for rank, cand in enumerate(chosen, 1):
        result = step.conn.execute(offers.insert().values(
            round_id=rnd["id"], entity=step.entity, record_id=step.record_id,
            candidate_id=cand.id, mode=strategy, state="pending", rank=rank,
            score={"score": cand.score, "terms": [list(t) for t in cand.terms]},
            created_at=step.utc, expires_at=None if expires is None else expires.astimezone(UTC)))
        assert result.inserted_primary_key is not None
        offer_id = int(result.inserted_primary_key[0])
        if expires is not None:
            step.timers.set("offer", str(offer_id), expires, step.now,
                            {"offer": offer_id, "round": rnd["id"]})
    step.emit(OFFERED, f"policy {policy_decl.name}",
              {"round": rnd["id"], "candidates": [c.id for c in chosen], "mode": strategy})


def candidates_near(step: Step, pool_entity: str, policy: Any) -> list[dict[str, Any]]:
    """Live pool records, only those near the record when the policy has a radius."""
    table = step.rt.tables[pool_entity]
    entity = step.rt.app.entities[pool_entity]
    query = select(table).where(table.c.deleted_at.is_(None))
    box = search_box(policy, step.record)
    if box is not None:
        lat, lng = table.c[f"{box.field}_lat"], table.c[f"{box.field}_lng"]
        query = query.where(and_(lat.between(box.min_lat, box.max_lat),
                                 lng.between(box.min_lng, box.max_lng)))
    rows = step.conn.execute(query).mappings().all()
    return [step.facts.expand(pool_entity, from_row(entity, dict(r), step.rt.tz), 1)
            for r in rows]


def tried_candidates(step: Step) -> set[int]:
    """Candidates already offered this record since the last accepted offer."""
    rows = step.conn.execute(select(offers.c.candidate_id, offers.c.state).where(
        offers.c.entity == step.entity).where(offers.c.record_id == step.record_id)
        .order_by(offers.c.id)).all()
    tried: set[int] = set()
    for candidate, state in rows:
        if state == "accepted":
            tried = set()
        else:
            tried.add(int(candidate))
    return tried


# ---------------------------------------------------------------------- answers

def offer_standing(step: Step, actor: Actor) -> tuple[bool, bool, bool]:
    """Whether the record was ever offered, whether ``actor`` (a pool member's user)
    has a pending offer of it, and whether the actor was ever offered it."""
    rows = step.conn.execute(select(offers.c.candidate_id, offers.c.state)
                             .where(offers.c.entity == step.entity)
                             .where(offers.c.record_id == step.record_id)).all()
    candidate = _candidate_of(step, actor)
    mine = [state for cand, state in rows if candidate is not None and int(cand) == candidate]
    return bool(rows), "pending" in mine, bool(mine)


def before_action(step: Step, actor: Actor, action: str) -> None:
    """Before the flow sees ``accept``: claim the actor's offer (and set the assignee);
    before it sees ``assign``: close the record's dispatch (:func:`close_dispatch`)."""
    if action == ASSIGN_ACTION:
        close_dispatch(step, f"assigned by {actor.user_id}")
        return
    if action != ACCEPT or not _has_offers(step):
        return
    offer = _pending_offer_of(step, actor)
    if offer is None:
        raise ConflictError("this order is no longer offered to you",
                            hint="another technician took it, or the offer expired")
    claimed = step.conn.execute(update(offers).where(offers.c.id == offer["id"])
                                .where(offers.c.state == "pending")
                                .values(state="accepted", answered_at=step.utc))
    if claimed.rowcount != 1:
        raise ConflictError("this order is no longer offered to you")
    step.timers.cancel("offer", [str(offer["id"])])
    withdraw_pending(step, f"accepted by {offer['candidate_id']}")
    step.conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.id == offer["round_id"])
                      .values(status="done"))
    field = assignee_field(step)
    if field is not None:
        step.set_field(field, int(offer["candidate_id"]), f"offer {offer['id']} accepted")
    step.note("dispatch", f"offer {offer['id']} accepted by {offer['candidate_id']}",
              {"offer": offer["id"], "candidate": offer["candidate_id"]})
    update_profile(step, int(offer["candidate_id"]), open_tasks=1, consecutive_anomalies=None)


def after_action(step: Step, actor: Actor, action: str) -> None:
    """After the flow accepted ``reject``: record it and re-match when the round is over."""
    if action != REJECT:
        return
    offer = _pending_offer_of(step, actor)
    if offer is None:
        return
    step.conn.execute(update(offers).where(offers.c.id == offer["id"])
                      .values(state="rejected", answered_at=step.utc))
    step.timers.cancel("offer", [str(offer["id"])])
    step.note("dispatch", f"offer {offer['id']} rejected by {offer['candidate_id']}",
              {"offer": offer["id"], "candidate": offer["candidate_id"]})
    update_profile(step, int(offer["candidate_id"]), rejected_count=1, consecutive_anomalies=1)
    _after_failed_offer(step, int(offer["round_id"]))


def fire_offer_timer(step: Step, payload: Mapping[str, Any]) -> None:
    """An offer's accept window ended: expire it if still pending, and re-match."""
    offer_id = int(payload["offer"])
    expired = step.conn.execute(update(offers).where(offers.c.id == offer_id)
                                .where(offers.c.state == "pending")
                                .values(state="expired", answered_at=step.utc))
    if expired.rowcount != 1:
        return
    row = step.conn.execute(select(offers).where(offers.c.id == offer_id)).mappings().one()
    step.note("dispatch", f"offer {offer_id} to {row['candidate_id']} expired",
              {"offer": offer_id, "candidate": row["candidate_id"]})
    update_profile(step, int(row["candidate_id"]), expired_count=1, consecutive_anomalies=1)
    _after_failed_offer(step, int(row["round_id"]))


def _after_failed_offer(step: Step, round_id: int) -> None:
    still = step.conn.execute(select(func.count()).select_from(offers)
                              .where(offers.c.round_id == round_id)
                              .where(offers.c.state.in_(("pending", "accepted")))).scalar()
    if still:
        return
    rnd = dict(step.conn.execute(select(dispatch_rounds).where(
        dispatch_rounds.c.id == round_id)).mappings().one())
    step.conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.id == round_id)
                      .values(status="done"))
    decl = step.rt.app.policies.get(rnd["policy"])
    retries = decl.offer.retries if decl and decl.offer else 0
    if rnd["attempt"] <= retries:
        request_dispatch(step, rnd["policy"], f"retry after round {round_id}",
                         attempt=rnd["attempt"] + 1)
    else:
        _escalate(step, rnd, f"no acceptance after {rnd['attempt']} tries",
                  decl.offer.escalate_to_role if decl and decl.offer else None)


def _escalate(step: Step, rnd: Mapping[str, Any], reason: str, role: str | None) -> None:
    step.conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.id == rnd["id"])
                      .values(status="escalated"))
    step.note("dispatch", f"escalated{' to ' + role if role else ''}: {reason}",
              {"round": rnd["id"], "reason": reason, "role": role})
    step.emit(ESCALATED, f"policy {rnd['policy']}", {"reason": reason, "role": role,
                                                      "round": rnd["id"]})


def close_dispatch(step: Step, reason: str) -> None:
    """The record is assigned by hand: withdraw its pending offers and end its open
    rounds (a queued or batched round then makes no offers)."""
    withdraw_pending(step, reason)
    step.conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.entity == step.entity)
                      .where(dispatch_rounds.c.record_id == step.record_id)
                      .where(dispatch_rounds.c.status.in_(("pending", "batched", "offered")))
                      .values(status="done"))


def withdraw_pending(step: Step, reason: str) -> None:
    """Withdraw the record's pending offers (and cancel their accept timers)."""
    pending = step.conn.execute(select(offers.c.id).where(offers.c.entity == step.entity)
                                .where(offers.c.record_id == step.record_id)
                                .where(offers.c.state == "pending")).scalars().all()
    if not pending:
        return
    step.conn.execute(update(offers).where(offers.c.id.in_(pending))
                      .values(state="withdrawn", answered_at=step.utc, reason=reason))
    step.timers.cancel("offer", [str(i) for i in pending])


def _has_offers(step: Step) -> bool:
    return step.conn.execute(select(offers.c.id).where(offers.c.entity == step.entity)
                             .where(offers.c.record_id == step.record_id).limit(1)) \
        .first() is not None


def _pending_offer_of(step: Step, actor: Actor) -> dict[str, Any] | None:
    candidate = _candidate_of(step, actor)
    if candidate is None:
        return None
    row = step.conn.execute(select(offers).where(offers.c.entity == step.entity)
                            .where(offers.c.record_id == step.record_id)
                            .where(offers.c.candidate_id == candidate)
                            .where(offers.c.state == "pending")
                            .order_by(offers.c.id.desc()).limit(1)).mappings().first()
    return None if row is None else dict(row)


def _candidate_of(step: Step, actor: Actor) -> int | None:
    """The pool record the actor is (the user field referencing the pool entity)."""
    pools = {p.pool for p in step.rt.app.policies.values() if p.entity == step.entity}
    for name, f in step.rt.app.user.fields.items():
        if f.kind == "reference" and f.reference in pools:
            value = actor.attributes.get(name)
            if isinstance(value, dict):
                value = value.get("id")
            if value is not None:
                return int(value)
    return None


def assignee_field(step: Step) -> str | None:
    """The record's reference to the pool entity that an accepted offer fills."""
    pools = {p.pool for p in step.rt.app.policies.values() if p.entity == step.entity}
    refs = [f.name for f in step.rt.app.entities[step.entity].fields.values()
            if f.kind == "reference" and f.reference in pools]
    return "assignee" if "assignee" in refs else (refs[0] if refs else None)


# ---------------------------------------------------------------------- profiles

def on_record_event(step: Step, event: str, payload: Mapping[str, Any]) -> None:
    """Profile bookkeeping on the dispatched record's own events (see module docs)."""
    rated = event == "updated" and "rating" in (payload.get("changed") or ())
    if event not in ("completed", "cancelled") and not rated:
        return
    field = assignee_field(step)
    assignee = step.record.get(field) if field else None
    if isinstance(assignee, dict):
        assignee = assignee.get("id")
    if not rated:
        withdraw_pending(step, f"record {event}")
    if assignee is None or field is None:
        return
    from .profiles import recent_stats

    if event == "completed":
        update_profile(step, int(assignee), recent_stats(step, field, int(assignee)),
                       open_tasks=-1, completed_count=1, consecutive_anomalies=0)
    elif rated:
        update_profile(step, int(assignee), recent_stats(step, field, int(assignee)))
    else:
        update_profile(step, int(assignee), open_tasks=-1)


def update_profile(step: Step, candidate: int, absolute: Mapping[str, Any] | None = None,
                   **deltas: int | None) -> None:
    """Change a candidate's profile: counters by ``deltas`` (``None`` or 0 for
    ``consecutive_anomalies`` resets it), other fields to the ``absolute`` values.

    Only fields the pool entity declares are written; a change is audited and is
    an ``updated`` event of the candidate.
    """
    pools = {p.pool for p in step.rt.app.policies.values() if p.entity == step.entity}
    for pool in pools:
        entity = step.rt.app.entities[pool]
        table = step.rt.tables[pool]
        wanted = {k: v for k, v in deltas.items() if k in entity.fields}
        fixed = {k: v for k, v in (absolute or {}).items() if k in entity.fields}
        if not wanted and not fixed:
            continue
        row = step.conn.execute(select(table).where(table.c.id == candidate)
                                .with_for_update()).mappings().first()
        if row is None:
            continue
        step.facts.held_by_caller(pool, candidate)
        values: dict[str, Any] = dict(fixed)
        for name, delta in wanted.items():
            old = row[name] or 0
            if name == "consecutive_anomalies" and delta in (0, None):
                values[name] = 0
            else:
                values[name] = max(0, old + (delta or 0))
        diff = {k: [json_value(row[k]), json_value(v)] for k, v in values.items()
                if row[k] != v}
        if not diff:
            continue
        step.conn.execute(update(table).where(table.c.id == candidate)
                          .values(**values, updated_at=step.utc,
                                  row_version=row["row_version"] + 1))
        step.facts.forget(pool, candidate)
        insert_row(step.conn, audit_log, {
            "entity": pool, "record_id": candidate, "action": "system", "actor": SYSTEM_USER,
            "channel": "dispatch", "at": step.utc, "changes": diff,
            "version_number": step.rt.version_number}, step.deferred)
        insert_row(step.conn, outbox, {
            "entity": pool, "record_id": candidate, "event": "updated", "created_at": step.utc,
            "attempts": 0, "version_number": step.rt.version_number,
            "payload": {"id": candidate, "changed": sorted(diff), "actor": SYSTEM_USER,
                        "channel": "dispatch"}}, step.deferred)
        step.after_commit("events", "process_record", pool, candidate)
