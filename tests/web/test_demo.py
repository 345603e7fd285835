"""`serve --demo` seeding: users per role linked to records, idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatchflow.platform.demo import seed_records, seed_users
from dispatchflow.platform.users import authenticate


def test_demo_seeding_is_idempotent_and_links_users(rt) -> None:
    assert seed_records(rt) > 0
    users = seed_users(rt)
    assert {role for _, role, _ in users} == set(rt.app.roles.data["roles"])
    password = dict((u, p) for u, _, p in users)["demo_customer"]
    actor = authenticate(rt.engine, "demo_customer", password)
    assert actor is not None and actor.roles == ("customer",)
    assert isinstance(actor.attributes.get("customer"), int)  # linked to a customer record
    assert seed_records(rt) == 0  # a second start adds nothing
    again = dict((u, p) for u, _, p in seed_users(rt))
    assert again["demo_customer"] == password  # remembered, still valid
    with rt.engine.connect() as conn:
        orders = conn.execute(select(func.count()).select_from(rt.tables["work_order"]))
        assert orders.scalar_one() == 3
