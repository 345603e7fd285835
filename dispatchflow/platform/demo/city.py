"""The living city of ``serve --demo``: simulated people keep the sample orders moving.

:class:`LivingCity` ``.step(now)`` does, at the runtime's clock:

1. **intake** — new requests from the simulated customers arrive at a steady
   rate (``orders_per_hour`` of the wall clock, jittered), over the bundle's
   channels (``city.yaml`` ``intake``): a JSON body to the webhook channel or a
   raw e-mail to the e-mail channel, signed with the channel's secret exactly
   as an integrator would sign it, and stored by the same delivery functions as
   ``POST /channels/...``;
2. **offers** — every pending offer to a simulated technician is answered after
   an exponential delay (the behaviour model of ``simulate``,
   :mod:`dispatchflow.rules.staff_behaviour`), always within the accept window:
   accepted with a probability lower with load and distance, else declined —
   but only when someone else is still left to ask (another simulated
   technician of the round, or an untried candidate and a retry), so no order
   is escalated because the city did not answer (in a broadcast or a grab pool
   they let the others take it instead, see :data:`PASSING_MODES`);
3. **lifecycle** — orders of simulated technicians and customers move on after
   the step's time (``city.yaml`` ``lifecycle``): depart (once the technician
   is free), arrive after the travel time at the model's speed, start, complete
   with a completion report after the category's handling time, confirm, rate.

The demo accounts (users linked to a technician or customer record) are never
driven: what is offered to the demo technician waits for a person. Durations are
simulated minutes run ``speed`` times faster. Every draw comes from the seed and
what it is about (the offer, the order), so a city given the same seed and the
same sequence of ``step`` times does the same things. :class:`CityThread` runs
the steps in the serve process, logs and survives errors, and stops on request.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select

from ...errors import DispatchflowError
from ...rules.demo_city import ORDER_TEMPLATES
from ...rules.geo import haversine_km, point_of
from ...rules.simulation import SimulationConfig
from ...rules.staff_behaviour import accept_probability, answer_delay_minutes, draws, salt_of
from .. import defaults
from ..assembly import Runtime
from ..intake.channels import channel, deliver_email, deliver_webhook
from ..intake.signatures import sign
from ..store.db import dispatch_rounds, offers, users
from ..store.storage import as_utc
from .data import CityScript, Person, Seed
from .people import (
    answer_offer,
    field_to,
    linked_entity,
    record_of,
    records_of,
    ref_id,
    step_minutes,
    take_step,
)
from .seed import find_record

log = logging.getLogger("dispatchflow.demo")

#: Offer modes in which a simulated technician who does not want the order lets the
#: others of the round take it instead of rejecting: in a grab pool nobody rejects, and
#: in a broadcast the reference flow leaves ``offered`` on the first rejection, which
#: would strand the other offers of the round until they expire.
PASSING_MODES = ("grab_pool", "broadcast")


@dataclass
class CityState:
    """What the city remembers between steps (not stored: a restart starts afresh)."""

    next_arrival: datetime | None = None
    arrivals: int = 0
    #: (order id, status) -> when the city first saw the order in that status
    seen: dict[tuple[int, str], datetime] = field(default_factory=dict)
    #: grab-pool and broadcast offers a simulated technician chose not to take
    passed: set[int] = field(default_factory=set)
    #: what the city did, newest last (the last DEMO_CITY_MEMORY things; for tests)
    done: list[str] = field(default_factory=list)


class LivingCity:
    """See module docs. ``seed`` fixes the randomness, ``speed`` scales simulated time."""

    def __init__(self, rt: Runtime, script: CityScript, people: Seed, *,
                 seed: int = defaults.DEMO_SEED,
                 orders_per_hour: float = defaults.DEMO_ORDERS_PER_HOUR,
                 speed: float = defaults.DEMO_CITY_SPEED,
                 config: SimulationConfig | None = None) -> None:
        if orders_per_hour < 0 or speed <= 0:
            raise ValueError("orders_per_hour must be 0 or more and speed positive")
        self.rt, self.script, self.people = rt, script, people
        self.salt = salt_of(seed)
        self.orders_per_hour, self.speed = orders_per_hour, speed
        self.config = config or SimulationConfig(accept_half_km=defaults.DEMO_ACCEPT_HALF_KM)
        self.state = CityState()
        self._warned: str | None = None

    # ------------------------------------------------------------------ one step
    def step(self, now: datetime | None = None) -> list[str]:
        """One pass at ``now`` (default: the runtime's clock); returns what it did."""
        now = now or self.rt.clock()
        before = len(self.state.done)
        self.rt.refresh()
        if self.script.entity not in self.rt.tables:
            if self._warned != "entity":
                log.warning("city: the active app has no %s entity; the city waits",
                            self.script.entity)
            self._warned = "entity"
            return []
        self._intake(now)
        linked = self._linked()
        self._answer_offers(now, linked["technician"])
        self._lifecycle(now, linked)
        done = self.state.done[before:]
        del self.state.done[:-defaults.DEMO_CITY_MEMORY]  # a long-running city forgets
        return done

    def _did(self, what: str) -> None:
        log.info("city: %s", what)
        self.state.done.append(what)

    def _sim(self, minutes: float) -> timedelta:
        """Real time of ``minutes`` simulated minutes."""
        return timedelta(minutes=minutes / self.speed)

    def _linked(self) -> dict[str, set[int]]:
        """Record ids (per technician/customer) that a user account is linked to."""
        out: dict[str, set[int]] = {"technician": set(), "customer": set()}
        with self.rt.engine.connect() as conn:
            rows = conn.execute(select(users.c.attributes)).scalars().all()
        for attributes in rows:
            for who in out:
                value = ref_id((attributes or {}).get(self.script.roles[who][1]))
                if value is not None:
                    out[who].add(value)
        return out

    # ------------------------------------------------------------------ intake
    def _intake(self, now: datetime) -> None:
        if self.orders_per_hour <= 0:
            return
        interval = 60.0 / self.orders_per_hour
        if self.state.next_arrival is None:
            self.state.next_arrival = now + self._jitter(interval, 0)
        while self.state.next_arrival <= now:
            n = self.state.arrivals
            self.state.arrivals += 1
            self.state.next_arrival += self._jitter(interval, n + 1)
            try:
                self._new_request(n, now)
            except DispatchflowError as exc:
                if self._warned != exc.message:
                    log.warning("city: a new request was refused: %s%s", exc.message,
                                f" ({exc.hint})" if exc.hint else "")
                self._warned = exc.message

    def _jitter(self, interval_minutes: float, n: int) -> timedelta:
        u, _ = draws(self.salt, "arrival", n)
        return timedelta(minutes=interval_minutes * (0.5 + u))

    def _new_request(self, n: int, now: datetime) -> None:
        customers = [c for c in self.people.customers if c.requests and c.user is None]
        if not customers:
            return
        u, v = draws(self.salt, "request", n)
        who = customers[int(u * len(customers))]
        category = who.requests[int(v * len(who.requests))]
        templates = ORDER_TEMPLATES.get(category) or (("报修", "需要上门服务。", None),)
        w, _ = draws(self.salt, "fault", n)
        title, description, _priority = templates[int(w * len(templates))]
        customer_id = find_record(self.rt, linked_entity(self.rt, self.script, "customer"),
                                  who.values)
        if customer_id is None:
            return
        key = f"demo-city-{now:%Y%m%dT%H%M%S}-{n}"
        email = self.script.intake.get("email") or {}
        if category in (email.get("categories") or ()):
            record = self._email(email, who, customer_id, title, description, key)
        else:
            record = self._webhook(self.script.intake["webhook"], who, customer_id, category,
                                   description, key)
        self._did(f"new request {record.get('id')} from customer {customer_id}: {title}")

    def _common(self, keys: dict[str, str], who: Person, customer_id: int) -> dict[str, Any]:
        loc = who.values.get("location") or {}
        values = {"customer": customer_id, "phone": who.values.get("phone"),
                  "address": who.values.get("address"),
                  "location": f"{loc.get('lat')},{loc.get('lng')}" if loc else None}
        return {keys[k]: v for k, v in values.items() if k in keys and v is not None}

    def _webhook(self, spec: dict[str, Any], who: Person, customer_id: int, category: str,
                 description: str, key: str) -> dict[str, Any]:
        keys = spec["keys"]
        body = self._common(keys, who, customer_id)
        body[keys["description"]] = description
        body[keys["category"]] = (spec.get("category_words") or {}).get(category, category)
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        ch = channel(self.rt.app, spec["channel"], "webhook")
        return deliver_webhook(self.rt, ch.name, raw, self._signed(ch, raw, key), key=key).record

    def _email(self, spec: dict[str, Any], who: Person, customer_id: int, title: str,
               description: str, key: str) -> dict[str, Any]:
        lines = [description, ""] + [f"{k}: {v}" for k, v in
                                     self._common(spec["keys"], who, customer_id).items()]
        msg = EmailMessage()
        msg["From"] = f"{who.values.get('name')} <customer@example.invalid>"
        msg["To"] = "service@example.invalid"
        msg["Subject"] = title
        msg["Message-ID"] = f"<{key}@demo.invalid>"
        msg.set_content("\n".join(lines))
        raw = bytes(msg)
        ch = channel(self.rt.app, spec["channel"], "email")
        return deliver_email(self.rt, ch.name, raw, self._signed(ch, raw, key), key=key).record

    def _signed(self, ch: Any, raw: bytes, key: str) -> str:
        """The channel signature header an integrator would send now (runtime clock)."""
        return sign(ch.secret(), raw, timestamp=int(self.rt.clock().timestamp()), key=key)

    # ------------------------------------------------------------------ offers
    def _answer_offers(self, now: datetime, humans: set[int]) -> None:
        with self.rt.engine.connect() as conn:
            pending = [dict(r) for r in conn.execute(
                select(offers).where(offers.c.state == "pending")
                .where(offers.c.entity == self.script.entity).order_by(offers.c.id))
                .mappings().all()]
        self.state.passed &= {o["id"] for o in pending}
        due = []
        for offer in pending:
            if int(offer["candidate_id"]) in humans or offer["id"] in self.state.passed:
                continue
            at = as_utc(offer["created_at"]) + self._sim(self._answer_minutes(offer))
            if at <= now:
                due.append((at, offer["id"], offer))
        for _at, _id, offer in sorted(due, key=lambda d: (d[0], d[1])):
            try:
                self._answer(offer, pending, humans)
            except DispatchflowError as exc:  # taken meanwhile, or the order moved on
                log.info("city: offer %s not answered: %s", offer["id"], exc.message)

    def _answer_minutes(self, offer: dict[str, Any]) -> float:
        u, _ = draws(self.salt, "answer", offer["id"])
        delay = answer_delay_minutes(self.config.response_minutes, u)
        cap = defaults.DEMO_MAX_ANSWER_MINUTES
        if offer["expires_at"] is not None:
            window = (as_utc(offer["expires_at"]) - as_utc(offer["created_at"]))
            cap = min(cap, window.total_seconds() / 60 * self.speed
                      * defaults.DEMO_ANSWER_WINDOW_SHARE)
        return min(delay, cap)

    def _answer(self, offer: dict[str, Any], pending: list[dict[str, Any]],
                humans: set[int]) -> None:
        tech_id, order_id = int(offer["candidate_id"]), int(offer["record_id"])
        tech = record_of(self.rt, linked_entity(self.rt, self.script, "technician"), tech_id)
        order = record_of(self.rt, self.script.entity, order_id)
        if tech is None or order is None:
            return
        here, there = point_of(tech.get("location")), point_of(order.get("location"))
        km = haversine_km(here[0], here[1], there[0], there[1]) if here and there else None
        u, _ = draws(self.salt, "accept", offer["id"])
        yes = u < accept_probability(self.config, int(tech.get("open_tasks") or 0), None, km)
        if not yes and self._others_left(offer, pending, humans):
            if offer["mode"] in PASSING_MODES:
                self.state.passed.add(offer["id"])  # simply does not take it
                return
            self._did(answer_offer(self.rt, self.script, order_id, tech_id, accept=False))
            return
        self._did(answer_offer(self.rt, self.script, order_id, tech_id, accept=True))

    def _others_left(self, offer: dict[str, Any], pending: list[dict[str, Any]],
                     humans: set[int]) -> bool:
        """Whether declining leaves someone to ask: another simulated technician of the
        round still deciding, or an untried qualified candidate and a retry to reach them."""
        for other in pending:
            if other["round_id"] == offer["round_id"] and other["id"] != offer["id"] and \
                    int(other["candidate_id"]) not in humans and \
                    other["id"] not in self.state.passed:
                return True
        with self.rt.engine.connect() as conn:
            rnd = conn.execute(select(dispatch_rounds).where(
                dispatch_rounds.c.id == offer["round_id"])).mappings().first()
            offered = conn.execute(select(func.count()).select_from(offers).where(
                offers.c.round_id == offer["round_id"])).scalar_one()
        if rnd is None:
            return False
        decl = self.rt.app.policies.get(rnd["policy"])
        retries = decl.offer.retries if decl is not None and decl.offer else 0
        # ``eligible`` counts the qualified candidates not tried before this round
        eligible = int((rnd["decision"] or {}).get("eligible") or 0)
        return bool(rnd["attempt"] <= retries and eligible > offered)

    # ------------------------------------------------------------------ lifecycle
    def _lifecycle(self, now: datetime, linked: dict[str, set[int]]) -> None:
        script = self.script
        table = self.rt.tables[script.entity]
        status = table.c[script.status_field]
        active = records_of(self.rt, script.entity, status.in_(list(script.lifecycle)))
        rows = [(o["id"], o[script.status_field]) for o in active]
        busy = self._busy(rows)
        current = {(int(i), st) for i, st in rows}
        self.state.seen = {k: v for k, v in self.state.seen.items() if k in current}
        for order in active:
            order_id, now_in = int(order["id"]), order[script.status_field]
            step = script.lifecycle[now_in]
            first = self.state.seen.setdefault((order_id, now_in), now)
            person = ref_id(order.get(field_to(self.rt, script, step.by)))
            if person is None or person in linked[step.by]:
                continue  # nobody to play, or a demo account's order: a person acts
            minutes = step_minutes(self.rt, script, step, order, self.config, self.salt)
            if now < first + self._sim(minutes):
                continue
            if step.when_free and busy.get(person, set()) - {order_id}:
                continue
            try:
                self._did(take_step(self.rt, script, step, order, self.salt))
            except DispatchflowError as exc:
                log.warning("city: order %s (%s) did not move: %s%s", order_id, now_in,
                            exc.message, f" ({exc.hint})" if exc.hint else "")
                continue
            if step.when_free:
                busy.setdefault(person, set()).add(order_id)

    def _busy(self, rows: Sequence[Any]) -> dict[int, set[int]]:
        """Technician id -> orders of theirs in a status that keeps them busy (a step by the
        technician that does not wait for them to be free)."""
        script = self.script
        busy_statuses = {s for s, step in script.lifecycle.items()
                         if step.by == "technician" and not step.when_free}
        table = self.rt.tables[script.entity]
        assignee = table.c[field_to(self.rt, script, "technician")]
        ids = [int(i) for i, st in rows if st in busy_statuses]
        out: dict[int, set[int]] = {}
        if not ids:
            return out
        with self.rt.engine.connect() as conn:
            for order_id, tech in conn.execute(select(table.c.id, assignee)
                                               .where(table.c.id.in_(ids))).all():
                if tech is not None:
                    out.setdefault(int(tech), set()).add(int(order_id))
        return out


class CityThread(threading.Thread):
    """Steps a :class:`LivingCity` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, city: LivingCity, interval: float = defaults.DEMO_TICK_SECONDS) -> None:
        super().__init__(name="dispatchflow-demo-city", daemon=True)
        self.city, self.interval = city, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.city.step()
            except Exception:  # keep the city alive: the next step retries
                log.exception("demo city step failed")
            self._stop_event.wait(self.interval)

    def stop(self, timeout: float | None = 10.0) -> None:
        """End the loop after the current step and wait for it (at most ``timeout`` s)."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def parse_rate(text: str) -> float:
    """``"6/h"``, ``"0.5/min"`` or ``"6"`` (per hour) -> requests per hour.

    Raises ValueError with the accepted forms for anything else.
    """
    value, _, unit = str(text).strip().partition("/")
    per = {"": 1.0, "h": 1.0, "hour": 1.0, "min": 60.0, "m": 60.0, "d": 1 / 24, "day": 1 / 24}
    try:
        number = float(value)
        factor = per[unit.strip().lower()]
    except (ValueError, KeyError):
        raise ValueError(f"not a rate: {text!r} (write e.g. 6/h, 0.5/min or 6)") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"not a rate: {text!r} (a number of 0 or more)")
    return number * factor
