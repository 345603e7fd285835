"""Burst dispatch: rounds of batched policies wait for their window, then match together.

With ``dispatch.batch`` in app.yaml (``window``, ``policies``, ``group_by``), a
first dispatch round of a listed policy is stored as ``batched`` instead of
being decided at once. Each scheduler tick calls :func:`due_batches`: a group
(same policy, same ``group_by`` value, e.g. region) whose oldest round has
waited ``window`` is handed to the ``dispatch`` queue as one job,
:func:`run_batch`. It locks the group's records (in id order, so two batches
cannot deadlock), matches them with the pure optimal assignment
(:func:`~dispatchflow.rules.matching.match_batch`, one order per candidate,
minimum total travel), and offers each order to its matched candidate; an order
the matching could not serve goes the usual way (the next best, or escalation).
Every round's decision records the batch: its size, the matched total travel
and the travel the greedy first-come-first-served alternative would have cost.

Urgent orders are dispatched by policies not listed (``urgent_nearby``), so
they never wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from ...dsl.ast import parse_duration
from ...rules.candidates import CandidatePool
from ...rules.matching import match_batch
from ..runtime.facts import FactLoader
from ..runtime.step import Step
from ..store.db import dispatch_rounds
from ..store.storage import as_utc
from .rounds import batch_settings, candidates_near, decide_and_offer, tried_candidates

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..assembly import Runtime


def due_batches(rt: Runtime, conn: Connection, now: datetime) -> list[list[int]]:
    """Groups of batched round ids whose window has passed at ``now``."""
    settings = batch_settings(rt)
    rows = conn.execute(select(dispatch_rounds.c.id, dispatch_rounds.c.policy,
                               dispatch_rounds.c.batch_key, dispatch_rounds.c.requested_at)
                        .where(dispatch_rounds.c.status == "batched")
                        .order_by(dispatch_rounds.c.id)).all()
    if not rows:
        return []
    window = parse_duration(settings["window"]) if settings else timedelta(0)
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.policy, row.batch_key), []).append(row)
    due = []
    for members in groups.values():
        oldest = min(as_utc(r.requested_at) for r in members)
        if oldest + window <= now:
            due.append([int(r.id) for r in members])
    return due


def run_batch(rt: Runtime, round_ids: Iterable[int]) -> None:
    """Match a group of batched rounds together and offer (see module docs)."""
    jobs: list[Any] = []
    with rt.engine.begin() as conn:
        rounds = [dict(r) for r in conn.execute(
            select(dispatch_rounds).where(dispatch_rounds.c.id.in_(list(round_ids)))
            .order_by(dispatch_rounds.c.record_id, dispatch_rounds.c.id)).mappings()]
        facts = FactLoader(rt, conn)
        steps: list[tuple[Step, dict[str, Any]]] = []
        for rnd in rounds:
            # Lock first, then re-check: another batch job may have taken the round.
            if facts.row(rnd["entity"], rnd["record_id"], lock=True) is None:
                continue
            fresh = conn.execute(select(dispatch_rounds.c.status).where(
                dispatch_rounds.c.id == rnd["id"])).scalar()
            if fresh != "batched":
                continue
            step = Step.open(rt, conn, rnd["entity"], rnd["record_id"],
                             as_utc(rnd["requested_at"]), facts=facts)
            if step is not None:
                steps.append((step, rnd))
        if not steps:
            return
        now = max(s.now for s, _ in steps)
        for step, _ in steps:
            step.now = now  # one instant for the whole batch: one consistent decision
        decl = rt.app.policies[steps[0][1]["policy"]]
        policy = rt.rules.policy(decl.name)
        seen: dict[Any, dict[str, Any]] = {}
        for step, _ in steps:
            for cand in candidates_near(step, decl.pool, policy):
                seen[cand["id"]] = cand
        pool = CandidatePool.from_records(seen.values())
        orders = [step.record for step, _ in steps]
        result = match_batch(policy, orders, pool, now,
                             exclude={step.record_id: tried_candidates(step) for step, _ in steps})
        summary = {"size": len(steps), "total_km": round(result.total_km, 3),
                   "greedy_total_km": round(result.greedy_total_km, 3),
                   "greedy_excess_pct": round(result.excess_pct, 2),
                   "unassigned": len(result.unassigned)}
        for step, rnd in steps:
            conn.execute(update(dispatch_rounds).where(dispatch_rounds.c.id == rnd["id"])
                         .values(status="pending"))
            chosen = result.assignments.get(step.record_id)
            step.note("dispatch", f"matched in a batch of {len(steps)} (total {summary['total_km']}"
                      f" km; greedy would travel {summary['greedy_total_km']} km)",
                      {"batch": summary, "candidate": chosen})
            decide_and_offer(step, {**rnd, "status": "pending"}, forced=chosen,
                             batch={**summary, "matched": chosen}, pool=pool)
            step.flush()
            jobs.extend(step.jobs)
    rt.queue.enqueue_many(jobs)
