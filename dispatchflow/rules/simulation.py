"""Dispatch simulation, pure: replay a day of work orders through the rules engine.

:func:`simulate` is a discrete-event simulation of one service day. Orders
arrive at their ``created_at``; each is triaged by the app's rule sets on
``<entity>.created`` exactly as the platform would (field updates applied, the
dispatch policy taken from the ``request dispatch`` effect, unless one policy
is forced for every order), and dispatched with the pure engine
(:func:`~dispatchflow.rules.dispatch.decide`) following the policy's offer
clause, with the platform's semantics (``platform/dispatching.py``):

- ``one at a time``: the best candidate not tried yet gets the offer;
- ``broadcast top k``: the best k get it, the first to accept wins;
- ``grab pool``: every qualified candidate sees it, the first claimer wins.

An offer is answered after a random delay; an answer later than the accept
window is an expiry. When every offer of a round failed, the next round goes to
candidates not tried yet, ``retry N`` times; then the order is escalated to the
policy's role (at once when nobody qualifies). In a grab pool, technicians
who do not want the order simply do not claim it (no rejection is recorded).

Technicians accept with probability ``accept_prob`` when their record has one,
else :attr:`SimulationConfig.accept_prob` times :attr:`~SimulationConfig.load_factor`
per open task. An accepted order adds an open task; the technician travels
(straight-line km at :attr:`~SimulationConfig.speed_kmh`) once free, handles the
order (``avg_handling_minutes`` or the category default, with lognormal
spread), then is free again at the order's location. Profile counters follow
the platform: accepting clears ``consecutive_anomalies``, a rejection or expiry
adds one (and to ``rejected_count``/``expired_count``), completing closes the
task, adds to ``completed_count`` and clears the anomalies. A technician with a
``shift`` ("HH:MM-HH:MM") is on duty only within it; others keep ``on_duty``.

The behaviour model (acceptance, answer delays, travel, handling times) is
:mod:`.staff_behaviour`, shared with the living city of ``serve --demo``; an
optional :attr:`~SimulationConfig.accept_half_km` also lowers acceptance with
distance.

Randomness: every draw is fixed by the seed (through ``random.Random(seed)``)
and by what it is about (the order and the technician, or the order), hashed
with BLAKE2b. So a run is deterministic for a seed, and two policies compared
on the same seed face the same technician behaviour (common random numbers):
a technician offered the same order answers the same way after the same delay
(only the load-dependent acceptance probability differs), and an order takes
as long to handle. Differences come from the policy, not from luck.

SLA attainment uses the app's SLA decision table (``sla_targets``):
acceptance within ``response_within`` of creation and arrival within
``onsite_within``, in elapsed (wall-clock) minutes; an order never accepted or
never reached misses its target.
"""

from __future__ import annotations

import difflib
import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np

from ..dsl.values import coerce_value
from ..errors import DispatchflowError, EvaluationError
from . import effects as fx
from .demo_city import parse_shift
from .dispatch import CandidatePool, decide
from .engine import Engine
from .geo import haversine_km, point_of
from .policy import CompiledPolicy
from .staff_behaviour import (
    CATEGORY_HANDLING_MINUTES,
    accept_probability,
    answer_delay_minutes,
    handling_minutes,
    salt_of,
    travel_minutes,
)
from .staff_behaviour import draws as seeded_draws

#: Label of a run whose policy comes from the triage rules of each order.
AS_CONFIGURED = "as configured"

#: Per-order statuses of :class:`OrderOutcome`.
ASSIGNED, ESCALATED, NOT_DISPATCHED = "assigned", "escalated", "not_dispatched"


class SimulationError(DispatchflowError):
    """A simulation cannot run: unknown policy, bad records, a rule failing on an order."""


@dataclass(frozen=True)
class SimulationConfig:
    """The tunables of :func:`simulate`, each with its unit."""

    #: Travel speed over straight-line distance, km/h.
    speed_kmh: float = 25.0
    #: Probability that an idle technician without ``accept_prob`` accepts an offer.
    accept_prob: float = 0.85
    #: Factor applied to that probability per open task (fewer tasks, likelier yes).
    load_factor: float = 0.8
    #: Distance (km) from the technician at which that probability halves; None: distance
    #: does not matter.
    accept_half_km: float | None = None
    #: Mean delay of an answer to an offer (exponential), minutes; per technician
    #: ``response_minutes`` overrides it.
    response_minutes: float = 2.0
    #: Handling time by category when a technician has no ``avg_handling_minutes``.
    handling_minutes: Mapping[str, float] = field(
        default_factory=lambda: CATEGORY_HANDLING_MINUTES)
    #: Handling time of a category missing from ``handling_minutes``, minutes.
    default_handling_minutes: float = 60.0
    #: Sigma of the lognormal factor applied to each handling time.
    handling_spread: float = 0.25
    #: Decision table with the SLA targets, and its two duration outputs.
    sla_table: str = "sla_targets"
    response_output: str = "response_within"
    onsite_output: str = "onsite_within"
    #: Event whose rule sets triage an arriving order.
    event: str = "created"
    #: Locale of the exclusion summaries in escalation reasons.
    locale: str = "zh"


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What happened to one order. Minutes are measured from ``created_at``."""

    order_id: Any
    created_at: datetime
    category: str | None
    priority: str | None
    customer_tier: str | None
    urgent: bool
    policy: str | None
    strategy: str | None
    status: str
    technician: Any = None
    rounds: int = 0
    offers: int = 0
    rejections: int = 0
    expiries: int = 0
    accepted_at: datetime | None = None
    minutes_to_accept: float | None = None
    travel_km: float | None = None
    arrived_at: datetime | None = None
    minutes_to_arrival: float | None = None
    completed_at: datetime | None = None
    response_target_minutes: float | None = None
    response_met: bool | None = None
    onsite_target_minutes: float | None = None
    onsite_met: bool | None = None
    escalated_to: str | None = None
    reason: str | None = None


#: Columns of :meth:`SimulationResult.outcome_rows`, in order.
OUTCOME_COLUMNS = tuple(OrderOutcome.__dataclass_fields__)


@dataclass(frozen=True)
class Metric:
    """One metric of a run: ``key`` (attribute of :class:`SimulationMetrics`), label, kind.

    ``kind`` is ``count``, ``rate`` (0..1), ``minutes``, ``km`` or ``ratio``.
    """

    key: str
    label: str
    kind: str


#: The metrics reported for every run, in display order.
METRICS: tuple[Metric, ...] = (
    Metric("orders", "orders", "count"),
    Metric("assigned", "assigned", "count"),
    Metric("assignment_rate", "assignment rate", "rate"),
    Metric("mean_minutes_to_accept", "mean minutes to acceptance", "minutes"),
    Metric("p90_minutes_to_accept", "p90 minutes to acceptance", "minutes"),
    Metric("mean_minutes_to_arrival", "mean minutes to arrival", "minutes"),
    Metric("mean_travel_km", "mean travel km", "km"),
    Metric("gini_jobs", "load balance (Gini of jobs)", "ratio"),
    Metric("escalations", "escalations", "count"),
    Metric("not_dispatched", "not dispatched", "count"),
    Metric("offers", "offers made", "count"),
    Metric("rejections", "offers rejected", "count"),
    Metric("expiries", "offers expired", "count"),
    Metric("sla_response_rate", "SLA response attainment", "rate"),
    Metric("sla_onsite_rate", "SLA on-site attainment", "rate"),
)


@dataclass(frozen=True)
class SimulationMetrics:
    """Aggregates of a run; None where there is nothing to average.

    ``gini_jobs`` is the Gini coefficient of jobs per technician over the
    technicians on duty at some time of the run (0 = perfectly even);
    ``p90_minutes_to_accept`` interpolates linearly between ranks.
    """

    orders: int
    assigned: int
    assignment_rate: float | None
    mean_minutes_to_accept: float | None
    p90_minutes_to_accept: float | None
    mean_minutes_to_arrival: float | None
    mean_travel_km: float | None
    gini_jobs: float | None
    escalations: int
    not_dispatched: int
    offers: int
    rejections: int
    expiries: int
    sla_response_rate: float | None
    sla_onsite_rate: float | None

    def value(self, key: str) -> float | int | None:
        """The metric named ``key`` (see :data:`METRICS`)."""
        value: float | int | None = getattr(self, key)
        return value


@dataclass(frozen=True)
class SimulationResult:
    """A finished run: its label, seed, per-order outcomes, metrics and jobs per technician.

    ``technicians`` are the technician records as the run left them (location,
    ``on_duty`` and profile counters), copies of the records given.
    """

    label: str
    seed: int
    outcomes: tuple[OrderOutcome, ...]
    metrics: SimulationMetrics
    jobs: Mapping[Any, int]
    technicians: tuple[dict[str, Any], ...] = ()

    def outcome_rows(self) -> list[dict[str, Any]]:
        """One dict per order with the :data:`OUTCOME_COLUMNS` (for CSV)."""
        return [{name: getattr(o, name) for name in OUTCOME_COLUMNS} for o in self.outcomes]


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative ``values``: 0 when all are equal, near 1 when one has all.

    Returns 0.0 for no values or an all-zero list. Raises ValueError for a negative value.
    """
    xs = sorted(float(v) for v in values)
    if xs and xs[0] < 0:
        raise ValueError("gini() needs non-negative values")
    total = sum(xs)
    n = len(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return max(0.0, 2.0 * weighted / (n * total) - (n + 1) / n)


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` ("did you mean"), or None."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return close[0] if close else None


def check_policy(engine: Engine, name: str) -> None:
    """Raise :class:`SimulationError` with a "did you mean" if the app has no policy ``name``."""
    known = sorted(engine.app.policies)
    if name in engine.app.policies:
        return
    close = suggest(name, known)
    raise SimulationError(f"unknown dispatch policy '{name}'",
                          hint=(f"did you mean '{close}'? " if close else "") +
                          f"policies: {', '.join(known) or 'none'}")


def simulate(engine: Engine, orders: Sequence[dict[str, Any]],
             technicians: Sequence[dict[str, Any]], *, seed: int = 0,
             policy: str | None = None, config: SimulationConfig | None = None,
             progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """Replay ``orders`` against ``technicians`` with ``engine``'s app; see the module docs.

    ``policy`` forces one dispatch policy for every order (None: the policy each
    order's triage requests). Records are copied, never changed; orders need
    ``id`` and ``created_at`` (aware datetime), technicians ``id``. ``progress``
    is called with (orders arrived, total orders) after each arrival.

    Raises :class:`SimulationError` for an unknown policy, records without
    ``id``/``created_at``, or a rule, table or policy failing on an order.
    """
    if policy is not None:
        check_policy(engine, policy)
    run = _Run(engine, config or SimulationConfig(), seed, policy)
    return run.execute(orders, technicians, progress)


# ------------------------------------------------------------------ the run


@dataclass(slots=True)
class _Tech:
    record: dict[str, Any]
    accept_prob: float | None
    response_minutes: float
    free_at: float = -math.inf
    origin: tuple[float, float] | None = None
    jobs: int = 0
    ever_on_duty: bool = False


@dataclass(slots=True)
class _Order:
    record: dict[str, Any]
    created: float
    policy: CompiledPolicy | None = None
    status: str = NOT_DISPATCHED
    attempt: int = 0
    pending: int = 0
    tried: set[Any] = field(default_factory=set)
    offers: int = 0
    rejections: int = 0
    expiries: int = 0
    technician: Any = None
    accepted: float | None = None
    arrived: float | None = None
    completed: float | None = None
    travel_km: float | None = None
    response_target: float | None = None
    onsite_target: float | None = None
    escalated_to: str | None = None
    reason: str | None = None


# event kinds, in the order they are handled at one instant
_SHIFT, _ARRIVAL, _ANSWER, _EXPIRE, _ONSITE, _DONE = range(6)


class _Run:
    """The state of one simulation; see :func:`simulate`."""

    def __init__(self, engine: Engine, config: SimulationConfig, seed: int,
                 forced: str | None) -> None:
        self.engine, self.config, self.seed, self.forced = engine, config, seed, forced
        self.salt = salt_of(seed)
        app = engine.app
        decls = [app.policies[forced]] if forced else list(app.policies.values())
        if not decls:
            raise SimulationError("the app declares no dispatch policy",
                                  hint="add one to a rules/*.rules file")
        self.entity, self.pool_entity = decls[0].entity, decls[0].pool
        self.tz = app.timezone
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.t0: datetime | None = None
        self.techs: dict[Any, _Tech] = {}
        self.pool = CandidatePool()

    # -- time and events
    def at(self, minutes: float) -> datetime:
        assert self.t0 is not None
        return self.t0 + timedelta(minutes=minutes)

    def push(self, when: float, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, kind, self.seq, payload))

    def draws(self, *keys: Any) -> tuple[float, float]:
        """Two uniform [0, 1) numbers fixed by the run's seed and ``keys`` (see module docs)."""
        return seeded_draws(self.salt, *keys)

    # -- setup
    def execute(self, orders: Sequence[dict[str, Any]], technicians: Sequence[dict[str, Any]],
                progress: Callable[[int, int], None] | None) -> SimulationResult:
        states = [self._order_state(o) for o in orders]
        if states:
            first = min(states, key=lambda s: s[1])[1]
            self.t0 = first
        else:
            self.t0 = datetime(2000, 1, 1)
        work = [_Order(rec, (created - self.t0).total_seconds() / 60) for rec, created in states]
        for tech in technicians:
            self._add_tech(tech)
        self._schedule_shifts(work)
        for i, order in enumerate(work):
            self.push(order.created, _ARRIVAL, i)
        arrived = 0
        while self.events:
            now, kind, _seq, payload = heapq.heappop(self.events)
            if kind == _ARRIVAL:
                self._arrive(work[payload], now)
                arrived += 1
                if progress is not None:
                    progress(arrived, len(work))
            elif kind == _SHIFT:
                tech, on = payload
                self._set_duty(tech, on)
            elif kind in (_ANSWER, _EXPIRE):
                self._answer(kind, now, *payload)
            elif kind == _ONSITE:
                self._onsite(now, *payload)
            else:
                self._done(now, *payload)
        return self._result(work)

    def _order_state(self, order: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
        if "id" not in order:
            raise SimulationError(f"an order record needs an 'id' (got {sorted(order)})")
        created = order.get("created_at")
        if not isinstance(created, datetime) or created.tzinfo is None:
            raise SimulationError(f"order {order['id']}: created_at must be a timezone-aware "
                                  f"datetime (got {created!r})",
                                  hint="write e.g. 2026-03-10T09:30:00+08:00")
        return self._with_defaults(self.entity, order), created

    def _with_defaults(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        definition = self.engine.app.entities.get(entity)
        if definition is not None:
            for fdef in definition.fields.values():
                if fdef.name not in out or (out[fdef.name] is None and fdef.default is not None):
                    out[fdef.name] = None if fdef.default is None else \
                        coerce_value(fdef.kind, fdef.default, self.tz)
        out["tags"] = list(out.get("tags") or [])
        return out

    def _add_tech(self, tech: dict[str, Any]) -> None:
        if "id" not in tech:
            raise SimulationError(f"a technician record needs an 'id' (got {sorted(tech)})")
        record = self._with_defaults(self.pool_entity, tech)
        if isinstance(record.get("location"), dict):
            record["location"] = dict(record["location"])
        for counter in ("open_tasks", "completed_count", "rejected_count", "expired_count",
                        "consecutive_anomalies"):
            record[counter] = int(record.get(counter) or 0)
        prob = record.get("accept_prob")
        if prob is not None and not 0 <= float(prob) <= 1:
            raise SimulationError(f"technician {record['id']}: accept_prob must be between 0 "
                                  f"and 1 (got {prob})")
        mean = record.get("response_minutes")
        if mean is not None and not float(mean) >= 0:
            raise SimulationError(f"technician {record['id']}: response_minutes must be 0 "
                                  f"or more (got {mean})")
        state = _Tech(record, None if prob is None else float(prob),
                      self.config.response_minutes if mean is None else float(mean),
                      origin=point_of(record.get("location")))
        if record.get("shift"):
            try:
                parse_shift(record["shift"])
            except ValueError as exc:
                raise SimulationError(f"technician {record['id']}: {exc}") from None
        self.techs[record["id"]] = state
        self.pool.upsert(record)

    def _schedule_shifts(self, work: list[_Order]) -> None:
        """Duty at the start, and every shift start and end over the days of the orders."""
        assert self.t0 is not None
        last = max((o.created for o in work), default=0.0)
        first_day = self.t0.date() - timedelta(days=1)
        days = int(last // 1440) + 3
        midnight = datetime.combine(first_day, datetime.min.time(), self.t0.tzinfo)
        for tech in self.techs.values():
            window = parse_shift(tech.record.get("shift"))
            if window is None:  # no shift: on_duty stays as given
                tech.ever_on_duty = bool(tech.record.get("on_duty"))
                continue
            start, end = window
            on_now = False
            for d in range(days):
                day0 = midnight + timedelta(days=d)
                begin = day0 + timedelta(minutes=start)
                finish = day0 + timedelta(minutes=end if end > start else end + 1440)
                b, f = self._minutes(begin), self._minutes(finish)
                if b <= 0 < f:
                    on_now = True
                if b > 0:
                    self.push(b, _SHIFT, (tech, True))
                if f > 0:
                    self.push(f, _SHIFT, (tech, False))
            self._set_duty(tech, on_now)

    def _minutes(self, when: datetime) -> float:
        assert self.t0 is not None
        return (when - self.t0).total_seconds() / 60

    def _set_duty(self, tech: _Tech, on: bool) -> None:
        tech.ever_on_duty = tech.ever_on_duty or on
        if tech.record.get("on_duty") != on:
            tech.record["on_duty"] = on
            self.pool.upsert(tech.record)

    # -- arrival and triage
    def _arrive(self, order: _Order, now: float) -> None:
        record = order.record
        when = self.at(now)
        requested: list[str | None] = []
        try:
            for result in self.engine.run_event(self.entity, self.config.event, record, when):
                for effect in result.effects:
                    if isinstance(effect, fx.SetField) and effect.entity == self.entity:
                        record[effect.field] = effect.value
                    elif isinstance(effect, fx.AddTag) and effect.entity == self.entity:
                        record["tags"].append(effect.tag)
                    elif isinstance(effect, fx.RequestDispatch):
                        requested.append(effect.policy)
            self._sla_targets(order, when)
        except EvaluationError as exc:
            raise SimulationError(f"order {record['id']}: {exc.message}", hint=exc.hint) \
                from exc
        name = self.forced
        if name is None and requested:
            name = requested[0] or self._default_policy()
            if name is not None:
                check_policy(self.engine, name)
        if name is None:
            order.reason = "triage requested no dispatch" if not requested else \
                "no default dispatch policy"
            return
        order.policy = self.engine.policy(name)
        self._round(order, now)

    def _default_policy(self) -> str | None:
        names = [p.name for p in self.engine.app.policies.values() if p.entity == self.entity]
        return names[0] if len(names) == 1 else None

    def _sla_targets(self, order: _Order, when: datetime) -> None:
        cfg = self.config
        if cfg.sla_table not in self.engine.app.tables:
            return
        outputs = self.engine.table_outputs(cfg.sla_table, order.record, when) or {}
        order.response_target = _minutes_of(outputs.get(cfg.response_output))
        order.onsite_target = _minutes_of(outputs.get(cfg.onsite_output))

    # -- offers
    def _round(self, order: _Order, now: float) -> None:
        policy = order.policy
        assert policy is not None
        offer = policy.decl.offer
        strategy = offer.strategy if offer else "one_at_a_time"
        limit = 1 if strategy == "one_at_a_time" else \
            max(1, offer.top_k) if strategy == "broadcast" and offer else None
        when = self.at(now)
        order.attempt += 1
        order.status = "dispatching"
        try:
            decision = decide(policy, order.record, self.pool, when, exclude=order.tried,
                              limit=limit, explain_top=0)
            window = policy.accept_within(order.record, when)
        except EvaluationError as exc:
            raise SimulationError(f"order {order.record['id']}: {exc.message}",
                                  hint=exc.hint) from exc
        if not decision.ranked:
            self._escalate(order, "no qualified candidate: " +
                           decision.summary(self.config.locale))
            return
        span = math.inf if window is None else window.total_seconds() / 60
        order.pending = len(decision.ranked)
        for cand in decision.ranked:
            tech = self.techs[cand.id]
            order.tried.add(cand.id)
            order.offers += 1
            u_accept, u_delay = self.draws(order.record["id"], cand.id)
            yes = u_accept < self._accept_prob(tech, order)
            delay = answer_delay_minutes(tech.response_minutes, u_delay)
            token = (order, tech, order.attempt)
            if strategy == "grab_pool" and not yes and span < math.inf:
                self.push(now + span, _EXPIRE, (*token, False))  # never claims
            elif delay <= span:
                self.push(now + delay, _ANSWER, (*token, yes))
            else:
                self.push(now + span, _EXPIRE, (*token, False))

    def _accept_prob(self, tech: _Tech, order: _Order) -> float:
        km = None
        if self.config.accept_half_km:
            target = point_of(order.record.get("location"))
            if target is not None and tech.origin is not None:
                km = haversine_km(tech.origin[0], tech.origin[1], target[0], target[1])
        return accept_probability(self.config, int(tech.record.get("open_tasks") or 0),
                                  tech.accept_prob, km)

    def _answer(self, kind: int, now: float, order: _Order, tech: _Tech, attempt: int,
                yes: bool) -> None:
        if order.status != "dispatching" or attempt != order.attempt:
            return  # withdrawn: someone else took the order, or the round is over
        if kind == _ANSWER and yes:
            self._assign(order, tech, now)
            return
        record = tech.record
        if kind == _ANSWER:
            record["rejected_count"] += 1
            order.rejections += 1
        else:
            record["expired_count"] += 1
            order.expiries += 1
        record["consecutive_anomalies"] += 1
        order.pending -= 1
        if order.pending > 0:
            return
        offer = order.policy.decl.offer if order.policy else None
        if order.attempt <= (offer.retries if offer else 0):
            self._round(order, now)
        else:
            self._escalate(order, f"no acceptance after {order.attempt} tries")

    def _escalate(self, order: _Order, reason: str) -> None:
        offer = order.policy.decl.offer if order.policy else None
        order.status = ESCALATED
        order.reason = reason
        order.escalated_to = offer.escalate_to_role if offer else None

    # -- jobs
    def _assign(self, order: _Order, tech: _Tech, now: float) -> None:
        record = tech.record
        order.status = ASSIGNED
        order.technician = record["id"]
        order.accepted = now
        record["open_tasks"] += 1
        record["consecutive_anomalies"] = 0
        tech.jobs += 1
        target = point_of(order.record.get("location"))
        km = 0.0
        if target is not None and tech.origin is not None:
            km = haversine_km(tech.origin[0], tech.origin[1], target[0], target[1])
        order.travel_km = km
        start = max(now, tech.free_at)
        arrive = start + travel_minutes(self.config, km)
        u1, u2 = self.draws(order.record["id"], "handling")
        done = arrive + handling_minutes(self.config, order.record.get("category"),
                                         tech.record.get("avg_handling_minutes"), u1, u2)
        tech.free_at = done
        if target is not None:
            tech.origin = target
        self.push(arrive, _ONSITE, (order, tech))
        self.push(done, _DONE, (order, tech))

    def _onsite(self, now: float, order: _Order, tech: _Tech) -> None:
        order.arrived = now
        location = order.record.get("location")
        if point_of(location) is not None:
            tech.record["location"] = dict(location)  # type: ignore[arg-type]
            self.pool.upsert(tech.record)

    def _done(self, now: float, order: _Order, tech: _Tech) -> None:
        order.completed = now
        record = tech.record
        record["open_tasks"] = max(0, record["open_tasks"] - 1)
        record["completed_count"] += 1
        record["consecutive_anomalies"] = 0

    # -- results
    def _result(self, work: list[_Order]) -> SimulationResult:
        outcomes = tuple(self._outcome(o) for o in work)
        jobs = {tid: t.jobs for tid, t in self.techs.items()}
        staff = [t.jobs for t in self.techs.values() if t.ever_on_duty or t.jobs]
        label = self.forced or AS_CONFIGURED
        return SimulationResult(label, self.seed, outcomes, _metrics(outcomes, staff),
                                MappingProxyType(jobs),
                                tuple(t.record for t in self.techs.values()))

    def _outcome(self, o: _Order) -> OrderOutcome:
        rec = o.record
        to_accept = None if o.accepted is None else o.accepted - o.created
        to_arrive = None if o.arrived is None else o.arrived - o.created
        customer = rec.get("customer")
        offer = o.policy.decl.offer if o.policy else None
        return OrderOutcome(
            order_id=rec["id"], created_at=self.at(o.created), category=rec.get("category"),
            priority=rec.get("priority"),
            customer_tier=customer.get("tier") if isinstance(customer, dict) else None,
            urgent=bool(rec.get("urgent")), policy=o.policy.name if o.policy else None,
            strategy=(offer.strategy if offer else "one_at_a_time") if o.policy else None,
            status=o.status, technician=o.technician, rounds=o.attempt, offers=o.offers,
            rejections=o.rejections, expiries=o.expiries,
            accepted_at=None if o.accepted is None else self.at(o.accepted),
            minutes_to_accept=to_accept, travel_km=o.travel_km,
            arrived_at=None if o.arrived is None else self.at(o.arrived),
            minutes_to_arrival=to_arrive,
            completed_at=None if o.completed is None else self.at(o.completed),
            response_target_minutes=o.response_target,
            response_met=None if o.response_target is None else
            to_accept is not None and to_accept <= o.response_target + 1e-9,
            onsite_target_minutes=o.onsite_target,
            onsite_met=None if o.onsite_target is None else
            to_arrive is not None and to_arrive <= o.onsite_target + 1e-9,
            escalated_to=o.escalated_to, reason=o.reason)


def _minutes_of(value: Any) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds() / 60
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _metrics(outcomes: Sequence[OrderOutcome], staff_jobs: Sequence[int]) -> SimulationMetrics:
    assigned = [o for o in outcomes if o.status == ASSIGNED]
    accept = [o.minutes_to_accept for o in assigned if o.minutes_to_accept is not None]
    arrival = [o.minutes_to_arrival for o in assigned if o.minutes_to_arrival is not None]
    travel = [o.travel_km for o in assigned if o.travel_km is not None]
    n = len(outcomes)
    return SimulationMetrics(
        orders=n,
        assigned=len(assigned),
        assignment_rate=len(assigned) / n if n else None,
        mean_minutes_to_accept=_mean(accept),
        p90_minutes_to_accept=float(np.percentile(accept, 90)) if accept else None,
        mean_minutes_to_arrival=_mean(arrival),
        mean_travel_km=_mean(travel),
        gini_jobs=gini(staff_jobs) if staff_jobs else None,
        escalations=sum(o.status == ESCALATED for o in outcomes),
        not_dispatched=sum(o.status == NOT_DISPATCHED for o in outcomes),
        offers=sum(o.offers for o in outcomes),
        rejections=sum(o.rejections for o in outcomes),
        expiries=sum(o.expiries for o in outcomes),
        sla_response_rate=_rate([o.response_met for o in outcomes
                                 if o.response_met is not None]),
        sla_onsite_rate=_rate([o.onsite_met for o in outcomes if o.onsite_met is not None]),
    )
