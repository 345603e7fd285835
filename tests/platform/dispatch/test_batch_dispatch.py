"""Burst dispatch: batched orders wait for the window, then are matched together with
less travel than first-come-first-served; urgent orders do not wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatchflow.dsl.compiler import compile_bundle, compile_sources
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import dispatch_rounds, offers
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
KM = 1 / 111.195  # degrees of latitude per km
BATCH = """
dispatch:
  batch:
    window: 30s
    policies: [nearby_skilled]
    group_by: region
"""


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Any:
    sources = dict(compile_bundle(REFERENCE).app.sources)  # type: ignore[union-attr]
    sources["app.yaml"] += BATCH
    result = compile_sources(sources)
    assert result.app is not None and result.app.dispatch["batch"]["window"] == "30s"
    clock = [datetime(2026, 3, 2, 2, 0, tzinfo=UTC)]
    runtime = Runtime(Settings.from_env(home=tmp_path, database_url=database_url,
                                        secret_key="t"), clock=lambda: clock[0])
    runtime.test_clock = clock  # type: ignore[attr-defined]
    publish(runtime.engine, result.app, created_by="test", now=clock[0])
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


def at_km(km: float) -> dict[str, float]:
    return {"lat": 31.2 + km * KM, "lng": 121.5}


def test_a_burst_is_matched_with_less_travel_than_greedy(rt) -> None:
    create, a = rt.records.create, SYSTEM_ACTOR
    region = create(a, "region", {"code": "PD", "name": "浦东"})["id"]
    cust = create(a, "customer", {"name": "李娜", "phone": "13800000002", "tier": "normal"})["id"]
    t_mid, t_far = (create(a, "technician", {
        "name": n, "level": 3, "on_duty": True, "skills": ["aircon"], "region": region,
        "location": at_km(km)})["id"] for n, km in (("中间", 0.5), ("南边", -1.2)))
    orders = [create(a, "work_order", {"title": "空调不制冷", "category": "aircon",
                                       "customer": cust, "region": region,
                                       "location": at_km(km)})["id"] for km in (0.0, 1.0)]
    urgent = create(a, "work_order", {"title": "卫生间水管爆裂漏水", "category": "aircon",
                                      "customer": cust, "region": region,
                                      "location": at_km(0.2)})["id"]
    status = {o: rt.records.get(a, "work_order", o)["status"] for o in [*orders, urgent]}
    assert status == {orders[0]: "dispatching", orders[1]: "dispatching", urgent: "offered"}

    rt.test_clock[0] += timedelta(seconds=20)
    tick(rt)
    assert rt.records.get(a, "work_order", orders[0])["status"] == "dispatching"
    rt.test_clock[0] += timedelta(seconds=11)
    tick(rt)
    with rt.engine.connect() as conn:
        made = dict(conn.execute(select(offers.c.record_id, offers.c.candidate_id)
                                 .where(offers.c.record_id.in_(orders))).all())
        decision = conn.execute(select(dispatch_rounds.c.decision)
                                .where(dispatch_rounds.c.record_id == orders[0])).scalar()
    # first come, first served would give the first order the middle technician and
    # send the other one 2.2 km; together, the far one takes the first order (1.2 km)
    assert made == {orders[0]: t_far, orders[1]: t_mid}
    batch = decision["batch"]
    assert batch["size"] == 2 and batch["matched"] == t_far
    assert batch["total_km"] == pytest.approx(1.7, abs=0.01)
    assert batch["greedy_total_km"] == pytest.approx(2.7, abs=0.01)
    assert all(rt.records.get(a, "work_order", o)["status"] == "offered" for o in orders)


def test_assigning_by_hand_ends_a_round_waiting_for_its_batch(rt) -> None:
    from dispatchflow.platform.dispatch.manual import assign_by_hand
    from dispatchflow.platform.records.actors import Actor

    create, a = rt.records.create, SYSTEM_ACTOR
    cust = create(a, "customer", {"name": "李娜", "phone": "13800000002", "tier": "normal"})["id"]
    techs = [create(a, "technician", {"name": n, "level": 3, "on_duty": True,
                                      "skills": ["aircon"], "location": at_km(km)})["id"]
             for n, km in (("近", 0.5), ("远", 1.5))]
    order = create(a, "work_order", {"title": "空调不制冷", "category": "aircon",
                                     "customer": cust, "location": at_km(0.0)})["id"]
    assert rt.records.get(a, "work_order", order)["status"] == "dispatching"  # waits
    dispatcher = Actor("disp", roles=("dispatcher",), attributes={"regions": []})
    done = assign_by_hand(rt, dispatcher, "work_order", order, techs[1], "老客户指定")
    assert done["states"] == ["accepted"]
    rt.test_clock[0] += timedelta(seconds=31)
    tick(rt)
    with rt.engine.connect() as conn:
        made = conn.execute(select(offers.c.id).where(offers.c.record_id == order)).all()
        rounds = conn.execute(select(dispatch_rounds.c.status)
                              .where(dispatch_rounds.c.record_id == order)).scalars().all()
    assert made == [] and rounds == ["done"]
    stored = rt.records.get(a, "work_order", order)
    assert stored["status"] == "accepted" and stored["assignee"] == techs[1]
