"""The seeds' dispatch stress tests on PostgreSQL + a private Redis + 2 RQ worker processes.

- 500 orders posted at once (8 client threads): every one ends offered or
  escalated, no event is lost, and when every technician then accepts every
  offer they hold, at the same time, no order is assigned twice;
- technicians who never answer drive the chain: retry → the area supervisor
  (escalation with the reason and its notification) → after three anomalies in
  a row, the technician alert (third fallback level);
- an order needing a skill nobody has goes straight to the supervisor, saying so;
- a cross-region order follows the policy's region rule.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.errors import ConflictError, NotFoundError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.users import add_user
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import dispatch_rounds, notifications, offers, outbox, timeline
from dispatchflow.platform.store.versions import publish

BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CATEGORIES = ["plumbing", "electrical", "aircon", "appliance", "water_heater", "hvac"]
KM = 1 / 111.195


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def system(fresh_database: Callable[[], str], private_redis: Any,
           processes: Callable[..., Any], tmp_path: Path,
           quiescence: Callable[..., None]) -> Iterator[Any]:
    """A runtime on RQ with two workers; ``settle()`` waits until nothing is left."""
    url = fresh_database()
    clock = Clock()
    rt = Runtime(Settings.from_env(home=tmp_path / "home", database_url=url,
                                   redis_url=private_redis.url, secret_key="stress"),
                 clock=clock)
    app = compile_bundle(BUNDLE).app
    assert app is not None
    publish(rt.engine, app, created_by="test", now=T0)
    rt.refresh()
    # the area supervisor receives escalations and technician alerts (in-app inbox)
    add_user(rt.engine, "supervisor", name="区域主管", password=None,
             roles=["area_supervisor"], attributes={"regions": []})
    procs = processes(url, private_redis.url)
    procs.start_workers(2)
    redis = private_redis.client()

    def settle() -> None:
        quiescence(rt.engine, redis=redis, procs=procs, timeout=240,
                   nudge=lambda: tick(rt, sweep_after=30))

    rt.clock_cell = clock  # type: ignore[attr-defined]
    rt.settle = settle  # type: ignore[attr-defined]
    yield rt
    redis.close()
    rt.close()


def region(rt: Runtime, code: str) -> int:
    return rt.records.create(SYSTEM_ACTOR, "region", {"code": code, "name": code})["id"]


def customer(rt: Runtime) -> int:
    return rt.records.create(SYSTEM_ACTOR, "customer", {
        "name": "李娜", "phone": "13800000002", "tier": "normal"})["id"]


def technician(rt: Runtime, lat: float, lng: float, skills: list[str], **extra: Any) -> int:
    return rt.records.create(SYSTEM_ACTOR, "technician", {
        "name": "师傅", "level": 3, "on_duty": True, "skills": skills,
        "location": {"lat": lat, "lng": lng}, **extra})["id"]


def order(rt: Runtime, cust: int, lat: float, lng: float, category: str = "aircon",
          **extra: Any) -> int:
    return rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "上门维修", "category": category, "customer": cust,
        "location": {"lat": lat, "lng": lng}, **extra})["id"]


def statuses(rt: Runtime, ids: list[int]) -> Counter[str]:
    table = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        return Counter(conn.execute(select(table.c.status).where(table.c.id.in_(ids)))
                       .scalars())


def tech_actor(tech_id: int) -> Actor:
    return Actor(f"t{tech_id}", roles=("technician",), attributes={"technician": tech_id})


def test_five_hundred_orders_at_once_none_lost_none_assigned_twice(system) -> None:
    rt = system
    rng = random.Random(7)
    cust = customer(rt)
    for _ in range(150):
        technician(rt, 31.23 + rng.uniform(-0.1, 0.1), 121.47 + rng.uniform(-0.1, 0.1),
                   rng.sample(CATEGORIES, 2))
    rt.settle()
    spots = [(31.23 + rng.uniform(-0.12, 0.12), 121.47 + rng.uniform(-0.12, 0.12),
              rng.choice(CATEGORIES)) for _ in range(500)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        orders = list(pool.map(lambda s: order(rt, cust, *s), spots))
    assert len(set(orders)) == 500
    rt.settle()
    with rt.engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.processed_at.is_(None))).scalar()
        created = conn.execute(select(func.count()).select_from(outbox)
                               .where(outbox.c.event == "created")
                               .where(outbox.c.entity == "work_order")).scalar()
    assert left == 0 and created == 500
    states = statuses(rt, orders)
    assert set(states) <= {"offered", "exception"}, states
    assert states["offered"] > 250, states  # most orders have a qualified technician

    # every technician accepts every offer they hold, all at once
    with rt.engine.connect() as conn:
        pending = conn.execute(select(offers.c.record_id, offers.c.candidate_id)
                               .where(offers.c.state == "pending")).all()

    def accept(pair: tuple[int, int]) -> bool:
        try:
            take_action(rt, tech_actor(pair[1]), "work_order", pair[0], "accept")
            return True
        except (ConflictError, NotFoundError):
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(pool.map(accept, pending))
    rt.settle()
    with rt.engine.connect() as conn:
        accepted = conn.execute(select(offers.c.record_id, func.count())
                                .where(offers.c.state == "accepted")
                                .group_by(offers.c.record_id)).all()
    assert all(n == 1 for _, n in accepted), "an order was accepted twice"
    assert len(accepted) == sum(wins) == states["offered"]
    table = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        assigned = dict(conn.execute(select(table.c.id, table.c.assignee)
                                     .where(table.c.status == "accepted")).all())
    assert len(assigned) == len(accepted)


def test_silence_drives_retry_then_supervisor_then_the_technician_alert(system) -> None:
    rt, clock = system, system.clock_cell
    cust = customer(rt)
    silent = [technician(rt, 31.2 + i * 0.3 * KM, 121.5, ["aircon"]) for i in range(4)]
    first = order(rt, cust, 31.2, 121.5)
    rt.settle()
    for _ in range(4):  # P3: each offer waits 10 minutes, then the next technician
        clock.now += timedelta(minutes=11)
        tick(rt)
        rt.settle()
    with rt.engine.connect() as conn:
        made = conn.execute(select(offers.c.candidate_id, offers.c.state)
                            .where(offers.c.record_id == first).order_by(offers.c.id)).all()
        escalated = conn.execute(select(timeline.c.summary).where(
            timeline.c.record_id == first).where(timeline.c.kind == "dispatch")
            .where(timeline.c.summary.startswith("escalated"))).scalars().all()
        notified = conn.execute(select(notifications.c.notification).where(
            notifications.c.record_id == first)).scalars().all()
    assert [s for _, s in made] == ["expired"] * 4 and [c for c, _ in made] == silent
    assert escalated == ["escalated to area_supervisor: no acceptance after 4 tries"]
    assert statuses(rt, [first]) == {"exception": 1}
    assert "escalation" in notified

    # the nearest technician has 1 anomaly; two more unanswered orders make three
    for _ in range(2):
        again = order(rt, cust, 31.2, 121.5)
        rt.settle()
        clock.now += timedelta(minutes=11)
        tick(rt)
        rt.settle()
        assert statuses(rt, [again]) == {"offered": 1}
    profile = rt.records.get(SYSTEM_ACTOR, "technician", silent[0])
    assert profile["consecutive_anomalies"] == 3 and profile["expired_count"] == 3
    assert "anomaly_alert" in profile["tags"]
    with rt.engine.connect() as conn:
        alerts = conn.execute(select(func.count()).select_from(notifications).where(
            notifications.c.notification == "technician_anomaly_alert")).scalar()
    assert alerts >= 1


def test_a_skill_nobody_has_goes_straight_to_the_supervisor(system) -> None:
    rt = system
    cust = customer(rt)
    technician(rt, 31.2, 121.5, ["aircon"])
    lonely = order(rt, cust, 31.2, 121.5, category="elevator")
    rt.settle()
    assert statuses(rt, [lonely]) == {"exception": 1}
    with rt.engine.connect() as conn:
        rnd = conn.execute(select(dispatch_rounds.c.decision, dispatch_rounds.c.status)
                           .where(dispatch_rounds.c.record_id == lonely)).one()
    assert rnd.status == "escalated"
    assert rnd.decision["summary"]["zh"] == "排除 1 人：技能不符 1"


def test_a_cross_region_order_follows_the_region_rule(system) -> None:
    rt = system
    cust = customer(rt)
    home, other = region(rt, "HP"), region(rt, "XH")
    near_other = technician(rt, 31.2 + 1.0 * KM, 121.5, ["aircon"], region=other)
    far_home = technician(rt, 31.2 + 4.5 * KM, 121.5, ["aircon"], region=home)
    border = technician(rt, 31.2 - 1.5 * KM, 121.5, ["aircon"], region=other)
    wo = order(rt, cust, 31.2, 121.5, region=home)
    rt.settle()
    with rt.engine.connect() as conn:
        decision = conn.execute(select(dispatch_rounds.c.decision)
                                .where(dispatch_rounds.c.record_id == wo)).scalar()
    ranked = [c["id"] for c in decision["ranked"]]
    # the other region's technicians within 2 km of the order may cross; the home one
    # is further but always allowed; nobody is excluded for the region here
    assert set(ranked) == {near_other, far_home, border} and ranked[0] == near_other
    far_other = technician(rt, 31.2 + 3.0 * KM, 121.5, ["aircon"], region=other)
    wo2 = order(rt, cust, 31.2, 121.5, region=home)
    rt.settle()
    with rt.engine.connect() as conn:
        decision = conn.execute(select(dispatch_rounds.c.decision)
                                .where(dispatch_rounds.c.record_id == wo2)).scalar()
    assert far_other not in [c["id"] for c in decision["ranked"]]
    assert decision["excluded"] == {"other region, beyond 2 km / 跨区且超出2公里": 1}
