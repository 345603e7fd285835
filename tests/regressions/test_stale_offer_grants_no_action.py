"""Issue #22, finding 1: a stale offer was a key.

A technician who once held an offer of an order could take any action on it
(``take_action`` let "was ever offered" stand in for "may read it"): the first
technician rejected the order, another took it, the first got 404 on
``GET /work_order/ID`` but ``POST .../actions/depart`` answered 200 and moved
the order to ``en_route``. Now only a *pending* offer grants anything, and only
``accept`` / ``reject``; every other action needs the action's row rules.
"""

from __future__ import annotations

from typing import Any


def test_a_rejected_offer_grants_no_action_after_another_took_the_order(client,
                                                                         people) -> None:
    order = people.order()
    assert people.offer_states(order) == [(people.techs[0], "pending")]
    rejected = client.post(f"/api/v1/work_order/{order}/actions/reject",
                           headers=people.headers("tech0"))
    assert rejected.status_code == 200, rejected.get_json()
    assert people.offer_states(order)[-1] == (people.techs[1], "pending")
    taken = client.post(f"/api/v1/work_order/{order}/actions/accept",
                        headers=people.headers("tech1"))
    assert taken.status_code == 200, taken.get_json()
    before = people.writes(order)

    assert client.get(f"/api/v1/work_order/{order}",
                      headers=people.headers("tech0")).status_code == 404
    depart = client.post(f"/api/v1/work_order/{order}/actions/depart",
                         headers=people.headers("tech0"))
    assert depart.status_code == 404, depart.get_json()
    report = client.post(f"/api/v1/work_order/{order}/actions/report_exception",
                         headers=people.headers("tech0"))
    assert report.status_code == 404, report.get_json()
    assert client.get(f"/api/v1/work_order/{order}/actions",
                      headers=people.headers("tech0")).status_code == 404
    assert people.get(order)["status"] == "accepted"
    assert people.writes(order) == before  # no state change, event or timeline entry


def test_a_lost_grab_pool_claim_answers_conflict_and_grants_nothing_else(client,
                                                                         people) -> None:
    order = people.order(priority="P4")  # the grab pool: offered to both at once
    assert sorted(people.offer_states(order)) == sorted(
        (t, "pending") for t in people.techs)
    won = client.post(f"/api/v1/work_order/{order}/actions/accept",
                      headers=people.headers("tech1"))
    assert won.status_code == 200, won.get_json()
    before = people.writes(order)
    lost = client.post(f"/api/v1/work_order/{order}/actions/accept",
                       headers=people.headers("tech0"))
    assert lost.status_code == 409  # "someone else took it", not "no such order"
    assert "no longer offered to you" in lost.get_json()["detail"]
    for action in ("depart", "reject", "report_exception"):
        res = client.post(f"/api/v1/work_order/{order}/actions/{action}",
                          headers=people.headers("tech0"))
        assert res.status_code in (404, 409), (action, res.get_json())
        assert res.status_code == (409 if action == "reject" else 404), action
    assert people.writes(order) == before


def test_an_expired_offer_grants_nothing(client, people, rt) -> None:
    from datetime import timedelta

    from dispatchflow.platform.runtime.scheduler import tick

    clock = [rt.clock()]
    rt.clock = lambda: clock[0]
    order = people.order()
    clock[0] += timedelta(minutes=11)  # past the 10-minute accept window
    tick(rt)
    states = people.offer_states(order)
    assert states[0] == (people.techs[0], "expired"), states
    res = client.post(f"/api/v1/work_order/{order}/actions/accept",
                      headers=people.headers("tech0"))
    assert res.status_code == 409, res.get_json()
    assert client.post(f"/api/v1/work_order/{order}/actions/accept",
                       headers=people.headers("tech1")).status_code == 200
    before = people.writes(order)
    depart = client.post(f"/api/v1/work_order/{order}/actions/depart",
                         headers=people.headers("tech0"))
    assert depart.status_code == 404, depart.get_json()
    assert people.writes(order) == before


def test_a_pending_offer_grants_only_accept_and_reject(client, people) -> None:
    order = people.order()
    listed: list[dict[str, Any]] = client.get(f"/api/v1/work_order/{order}/actions",
                                              headers=people.headers("tech0")).get_json()["items"]
    assert sorted(a["action"] for a in listed) == ["accept", "reject"]
    before = people.writes(order)
    for action in ("depart", "report_exception", "arrive"):
        res = client.post(f"/api/v1/work_order/{order}/actions/{action}",
                          headers=people.headers("tech0"))
        assert res.status_code == 404, (action, res.get_json())
    assert people.writes(order) == before
