"""Issue #21 (5): the demo technician had no plumbing skill, so the headline order (a
water leak, 漏水) could never be offered to the person trying the technician's app.

Now the demo technician has the plumbing skill near the leak and gets its offer.
"""

from __future__ import annotations

from sqlalchemy import select

from dispatchflow.platform.demo.seed import seed_records, seed_users
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.store.db import offers, users


def test_the_leak_order_is_offered_to_the_demo_technician(demo_rt) -> None:
    rt = demo_rt
    seed_records(rt)
    seed_users(rt)
    with rt.engine.connect() as conn:
        attributes = conn.execute(select(users.c.attributes)
                                  .where(users.c.id == "demo_technician")).scalar_one()
    technician = attributes.get("technician")
    assert technician is not None
    leaks = [o for o in rt.records.list(SYSTEM_ACTOR, "work_order").items
             if "漏水" in o["title"]]
    assert leaks
    with rt.engine.connect() as conn:
        offered_to = set(conn.execute(select(offers.c.candidate_id).where(
            offers.c.record_id.in_([o["id"] for o in leaks]))).scalars())
    assert technician in offered_to
