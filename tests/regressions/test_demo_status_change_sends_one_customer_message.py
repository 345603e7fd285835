"""Issue #21 (5): every demo user was linked to the same customer record, so one status
change of a demo customer's order sent a customer message to every demo user (7 of them).

Now only users with the customer role are linked to a customer, each to their own
record: accepting the demo customer's leak order messages the demo customer once.
"""

from __future__ import annotations

from sqlalchemy import select

from dispatchflow.platform.demo.seed import seed_records, seed_users
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.store.db import notifications, offers


def test_one_status_change_sends_one_customer_message(demo_rt) -> None:
    rt = demo_rt
    seed_records(rt)
    seed_users(rt)
    (leak,) = [o for o in rt.records.list(SYSTEM_ACTOR, "work_order").items
               if o["title"] == "厨房水管漏水"]
    with rt.engine.connect() as conn:
        candidate = conn.execute(select(offers.c.candidate_id).where(
            offers.c.record_id == leak["id"]).where(offers.c.state == "pending")
            .order_by(offers.c.id)).scalars().first()
    assert candidate is not None
    technician = Actor("tech", roles=("technician",), attributes={"technician": candidate})
    take_action(rt, technician, "work_order", leak["id"], "accept")  # offered -> accepted
    with rt.engine.connect() as conn:
        sent = conn.execute(select(notifications.c.user_id).where(
            notifications.c.notification == "customer_status_update")
            .where(notifications.c.record_id == leak["id"])
            .where(notifications.c.channel == "inbox")).scalars().all()
    assert sent == ["demo_customer"]
