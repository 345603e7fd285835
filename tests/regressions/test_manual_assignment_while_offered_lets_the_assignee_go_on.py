"""Issue #21, item 2: a manual assignment while an offer was open stranded the order.

Assigning by hand while the order was ``offered`` set the assignee and withdrew
the offer, but the order stayed ``offered``: the assignee then got 409 on
``accept`` and on ``depart`` while ``GET .../actions`` still listed ``accept``.
Now the assignment is the flow's ``assign`` transition (declared by the bundle
in every state where assigning by hand is allowed): it leads where an accepted
offer does, so the assignee can go on at once.
"""

from __future__ import annotations

from sqlalchemy import select

from dispatchflow.platform.store.db import dispatch_rounds


def _assign(client, people, order: int, candidate: int, **extra):
    return client.post(f"/api/v1/work_order/{order}/assign", headers=people.headers("dispatcher"),
                       json={"candidate": candidate, "reason": "客户指定王师傅", **extra})


def test_assigning_an_offered_order_lets_the_assignee_depart_at_once(client, people, rt) -> None:
    order = people.order()
    assert people.get(order)["status"] == "offered"
    assert people.offer_states(order) == [(people.techs[0], "pending")]

    res = _assign(client, people, order, people.techs[1])
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["states"] == ["accepted"]
    stored = people.get(order)
    assert stored["status"] == "accepted" and stored["assignee"] == people.techs[1]
    assert people.offer_states(order) == [(people.techs[0], "withdrawn")]
    with rt.engine.connect() as conn:
        rounds = conn.execute(select(dispatch_rounds.c.status)
                              .where(dispatch_rounds.c.record_id == order)).scalars().all()
    assert set(rounds) == {"done"}  # no round left to make new offers

    listed = client.get(f"/api/v1/work_order/{order}/actions", headers=people.headers("tech1"))
    assert listed.status_code == 200
    names = [a["action"] for a in listed.get_json()["items"]]
    assert "accept" not in names and "depart" in names
    depart = client.post(f"/api/v1/work_order/{order}/actions/depart",
                         headers=people.headers("tech1"))
    assert depart.status_code == 200, depart.get_json()
    assert people.get(order)["status"] == "en_route"

    # the technician whose offer was withdrawn can do nothing more with it
    assert client.post(f"/api/v1/work_order/{order}/actions/accept",
                       headers=people.headers("tech0")).status_code == 409


def test_reassigning_an_order_en_route_hands_it_over(client, people) -> None:
    order = people.order()
    for action in ("accept", "depart"):
        assert client.post(f"/api/v1/work_order/{order}/actions/{action}",
                           headers=people.headers("tech0")).status_code == 200
    res = _assign(client, people, order, people.techs[1])
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["transfer"] is True and res.get_json()["states"] == ["accepted"]
    assert client.post(f"/api/v1/work_order/{order}/actions/depart",
                       headers=people.headers("tech1")).status_code == 200
    assert client.post(f"/api/v1/work_order/{order}/actions/arrive",
                       headers=people.headers("tech0")).status_code == 404


def test_a_state_without_an_assign_transition_is_a_conflict_and_writes_nothing(
        client, people) -> None:
    order = people.order()
    for action in ("accept", "depart", "arrive"):
        assert client.post(f"/api/v1/work_order/{order}/actions/{action}",
                           headers=people.headers("tech0")).status_code == 200
    before = people.writes(order)
    res = _assign(client, people, order, people.techs[1])
    assert res.status_code == 409
    detail = res.get_json()["detail"]
    assert "on_site" in detail and "offered" in detail and "en_route" in detail
    assert people.get(order)["assignee"] == people.techs[0]
    assert people.writes(order) == before


def test_an_assignment_on_a_record_changed_meanwhile_is_a_conflict(client, people) -> None:
    order = people.order()
    seen = people.get(order)["row_version"]
    assert client.post(f"/api/v1/work_order/{order}/actions/accept",
                       headers=people.headers("tech0")).status_code == 200
    before = people.writes(order)
    res = _assign(client, people, order, people.techs[1], row_version=seen)
    assert res.status_code == 409
    assert "changed by someone else" in res.get_json()["detail"]
    stale = client.post(f"/api/v1/work_order/{order}/actions/depart",
                        headers={**people.headers("tech0"), "If-Match": f'"{seen}"'})
    assert stale.status_code == 409
    assert people.writes(order) == before
    current = people.get(order)["row_version"]
    fresh = client.post(f"/api/v1/work_order/{order}/actions/depart",
                        headers={**people.headers("tech0"), "If-Match": f'"{current}"'})
    assert fresh.status_code == 200, fresh.get_json()
