"""Dispatch decisions, pure: rank the candidates of one work order and say why.

:func:`decide` answers "who should get this work order, and why not the
others": it searches a :class:`~dispatchflow.rules.candidates.CandidatePool`
with the policy (only candidates within the policy's radius, see
:mod:`dispatchflow.rules.candidates`), and ranks the eligible ones by score,
tiebreaks and id. The result, a :class:`Decision`, records the ranking, the
score terms of the top candidates and how many candidates each filter
excluded; the platform stores it on the order's timeline (``to_dict``) and
shows the dispatcher its ``summary``.

The compiled policy is the only authority on filters and scores, so the
ranking equals that of a plain loop calling ``policy.evaluate`` over the whole
pool. Exclusion counts differ from such a loop in one way, by design: a
candidate outside the radius is counted under the distance filter's label.

Bursts of non-urgent orders are matched together by
:func:`~dispatchflow.rules.matching.match_batch` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from .candidates import (
    ALREADY_TRIED,
    CandidateId,
    CandidatePool,
    SearchBox,
    as_id_set,
    policy_radius_km,
    rank,
    search,
    search_box,
)
from .matching import BatchResult, match_batch
from .policy import CompiledPolicy, _Descending
from .screening import order_paths

__all__ = ["ALREADY_TRIED", "EXPLAIN_TOP", "BatchResult", "CandidatePool", "Decision",
           "RankedCandidate", "SearchBox", "decide", "failed_filters", "localized_label",
           "match_batch", "policy_radius_km", "search_box"]

#: How many top candidates a :class:`Decision` explains term by term by default.
EXPLAIN_TOP = 10


class RankedCandidate(NamedTuple):
    """One eligible candidate in rank order (an immutable named tuple: cheap to build).

    ``score`` is the policy's total. ``terms`` (label, contribution) and
    ``tiebreak`` (the values of the policy's tiebreak expressions, None for
    null) are filled for the explained top candidates only and are empty below.
    """

    id: Any
    score: float
    terms: tuple[tuple[str, float], ...] = ()
    tiebreak: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {"id": _jsonable(self.id), "score": _jsonable(float(self.score)),
                "terms": [{"label": label, "value": _jsonable(value)}
                          for label, value in self.terms],
                "tiebreak": [_jsonable(v) for v in self.tiebreak]}


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide` for one order; see the module docs.

    ``excluded`` maps a filter label (or :data:`ALREADY_TRIED`) to the number of
    candidates it excluded, in the policy's filter order. ``considered`` is how
    many candidates the policy was run on, ``eligible`` how many passed (``ranked``
    may hold fewer when a limit was given), ``pool_size`` the whole pool, and
    ``radius_km`` the radius that bounded the search (None: the whole pool).
    ``sum(excluded.values()) + eligible == pool_size``.
    """

    policy: str
    ranked: tuple[RankedCandidate, ...]
    excluded: dict[str, int]
    considered: int
    pool_size: int
    eligible: int
    radius_km: float | None = None

    @property
    def best(self) -> RankedCandidate | None:
        """The top-ranked candidate, or None when nobody is eligible."""
        return self.ranked[0] if self.ranked else None

    @property
    def ids(self) -> list[Any]:
        """Candidate ids in rank order."""
        return [r.id for r in self.ranked]

    def summary(self, locale: str = "en") -> str:
        """One line on who was excluded and why, largest reason first.

        ``"37 excluded: 30 off duty, 5 lacking skill, 2 beyond 5 km"``, or for a
        ``zh*`` locale ``"排除 37 人：不在岗 30，技能不符 5，超出5公里 2"``.
        Bilingual labels (``"en / 中文"``) are split; others are shown as written.
        """
        zh = locale.lower().startswith("zh")
        total = sum(self.excluded.values())
        order = {label: i for i, label in enumerate(self.excluded)}
        reasons = sorted(self.excluded.items(), key=lambda kv: (-kv[1], order[kv[0]]))
        if zh:
            head = f"排除 {total} 人"
            parts = [f"{localized_label(label, 'zh')} {n}" for label, n in reasons]
            return head + ("：" + "，".join(parts) if parts else "")
        head = f"{total} excluded"
        parts = [f"{n} {localized_label(label, 'en')}" for label, n in reasons]
        return head + (": " + ", ".join(parts) if parts else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (with both summaries), for storage and the API."""
        return {"policy": self.policy,
                "ranked": [r.to_dict() for r in self.ranked],
                "excluded": dict(self.excluded),
                "considered": self.considered,
                "eligible": self.eligible,
                "pool_size": self.pool_size,
                "radius_km": self.radius_km,
                "summary": {"en": self.summary("en"), "zh": self.summary("zh")}}


def localized_label(label: str, locale: str) -> str:
    """The ``locale`` half of a bilingual ``"en / 中文"`` label, or the label itself.

    Only a label whose part after the last ``" / "`` contains non-ASCII text is
    treated as bilingual, so an unlabelled filter shown as its expression
    (``a / b > 1``) stays whole.
    """
    if " / " in label:
        en, _, other = label.rpartition(" / ")
        if en and any(ord(ch) > 127 for ch in other):
            return other if locale.lower().startswith("zh") else en
    return label



def decide(policy: CompiledPolicy, order: dict[str, Any], pool: CandidatePool,
           now: datetime, *, exclude: Iterable[CandidateId] = frozenset(),
           limit: int | None = None, explain_top: int = EXPLAIN_TOP) -> Decision:
    """Rank the candidates of ``pool`` for ``order`` under ``policy`` at ``now``.

    Candidates within the policy's radius (:func:`policy_radius_km`) come from the
    pool's spatial index; without a radius, or when the order has no usable
    location, or when the pool indexes another field than the policy's distance
    clause reads, every candidate is considered. ``exclude`` ids (candidates
    already offered this order) are skipped and counted under
    :data:`ALREADY_TRIED`. Eligible candidates are ranked by score (descending),
    then the policy's tiebreaks, then id, so equal inputs give equal output.
    ``ranked`` holds the first ``limit`` (all when None); the first
    ``explain_top`` of them carry their score terms and tiebreak values
    (from ``policy.explain``).

    Raises :class:`~dispatchflow.errors.EvaluationError` when the policy fails on
    a record (e.g. a required field is missing).
    """
    found = search(policy, order, pool, now, as_id_set(exclude))
    ranked = rank(policy, order, now, found.scored, limit)
    n = len(ranked) if limit is None else max(0, min(limit, len(ranked)))
    out = []
    for i, (score, cid, record, _km) in enumerate(ranked[:n]):
        if i < explain_top:
            ex = policy.explain(order, record, now)
            out.append(RankedCandidate(cid, score, tuple(ex.terms),
                                       _tiebreak_values(policy, ex.tiebreak)))
        else:
            out.append(RankedCandidate(cid, score))
    return Decision(policy.name, tuple(out), found.excluded, found.considered, len(pool),
                    len(found.scored), found.radius_km)


def failed_filters(policy: CompiledPolicy, order: dict[str, Any], candidate: dict[str, Any],
                   now: datetime, locale: str = "en") -> list[str]:
    """The hard filters (``require``) of ``policy`` that ``candidate`` fails for ``order``,
    in the policy's order, each as its label in ``locale`` followed by the order's
    plain values the filter reads (``"技能不符: plumbing"``), for a dispatcher who
    assigns by hand. Raises EvaluationError like :func:`decide`.
    """
    decl = policy.decl
    out = []
    for clause, (label, ok) in zip(decl.requires, policy.explain(order, candidate, now).filters,
                                   strict=True):
        if ok:
            continue
        values = [v for path in sorted(order_paths(clause.condition, decl.entity, decl.pool)
                                       or ())
                  if isinstance(v := _at(order, path), str | int | float)
                  and not isinstance(v, bool)]
        text = localized_label(label, locale)
        out.append(f"{text}: {', '.join(str(v) for v in values)}" if values else text)
    return out


def _at(record: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(record, dict):
            return None
        record = record.get(step)
    return record


def _tiebreak_values(policy: CompiledPolicy, key: tuple[Any, ...]) -> tuple[Any, ...]:
    """The tiebreak expressions' values back from a sort key (undoing ``desc``)."""
    values: list[Any] = []
    for (missing, v), clause in zip(key, policy.decl.tiebreaks, strict=False):
        if missing:
            values.append(None)
        elif isinstance(v, _Descending):
            values.append(v.value)
        elif clause.descending and isinstance(v, int | float):
            values.append(-v)
        else:
            values.append(v)
    return tuple(values)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
