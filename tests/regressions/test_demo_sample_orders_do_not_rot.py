"""Issue #21 (5): the demo's sample orders fell to `exception` within 3-5 minutes
because nobody answered their offers.

Now the living city of `serve --demo` answers the offers made to its simulated
technicians: half an hour later every sample order offered at the start has been
taken, and nothing was escalated for lack of an answer.
"""

from __future__ import annotations

from sqlalchemy import select

from dispatchflow.platform.demo.city import LivingCity
from dispatchflow.platform.demo.data import load_city, load_seed
from dispatchflow.platform.demo.seed import demo_folder, seed_records, seed_users
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.runtime.scheduler import tick
from dispatchflow.platform.store.db import timeline


def test_sample_orders_are_answered_and_do_not_fall_to_exception(demo_rt) -> None:
    rt = demo_rt
    seed_records(rt)
    seed_users(rt)
    start = {o["id"]: o["status"] for o in rt.records.list(SYSTEM_ACTOR, "work_order").items}
    city = LivingCity(rt, load_city(demo_folder()), load_seed(demo_folder()),
                      orders_per_hour=0)
    for _ in range(30):  # half an hour
        rt.test_clock.advance(60)
        tick(rt)
        city.step()
    now = {o["id"]: o["status"] for o in rt.records.list(SYSTEM_ACTOR, "work_order").items}
    offered = [i for i, status in start.items() if status == "offered"]
    assert offered
    assert all(now[i] not in ("offered", "dispatching", "exception") for i in offered)
    with rt.engine.connect() as conn:
        notes = conn.execute(select(timeline.c.summary)).scalars().all()
    assert not any("no acceptance" in s for s in notes)
