"""Issue #22, finding 4: a filter through a reference ignored the target's row filter.

A dispatcher limited to region PD gets 404 on a technician of region XH, yet
recovered that technician's phone digit by digit with
``?filter=work_order.assignee.phone matches "^139…"`` on an order they can see.
"""

from __future__ import annotations

from typing import Any

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

from . import api_world

reference_app, rt, client, world, token_for = (api_world.reference_app, api_world.rt,
                                               api_world.client, api_world.world,
                                               api_world.token_for)
auth = api_world.auth


def _outsider_on_a_visible_order(rt: Any, world: dict[str, Any]) -> tuple[int, int]:
    region = rt.records.create(SYSTEM_ACTOR, "region", {"code": "XH", "name": "徐汇区"})
    tech = rt.records.create(SYSTEM_ACTOR, "technician", {
        "name": "钱师傅", "level": 2, "phone": "13912345678", "region": region["id"],
        "skills": ["aircon"], "on_duty": True, "location": {"lat": 31.19, "lng": 121.44}})
    order = rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "空调漏水", "category": "aircon", "customer": world["customers"][0]["id"],
        "region": world["region"]["id"], "assignee": tech["id"],
        "location": {"lat": 31.21, "lng": 121.51}})
    return tech["id"], order["id"]


def _matches(client: Any, token: str, condition: str) -> list[int]:
    res = client.get("/api/v1/work_order", query_string={"filter": condition},
                     headers=auth(token))
    assert res.status_code == 200, res.get_json()
    return [item["id"] for item in res.get_json()["items"]]


def test_a_phone_behind_a_hidden_technician_cannot_be_probed(client, rt, world,
                                                              token_for) -> None:
    tech_id, order_id = _outsider_on_a_visible_order(rt, world)
    token = token_for("dispatcher")
    assert client.get(f"/api/v1/technician/{tech_id}", headers=auth(token)).status_code == 404
    assert order_id in _matches(client, token, f"work_order.id == {order_id}")

    for probe in ('work_order.assignee.phone matches "^139"',
                  'work_order.assignee.phone == "13912345678"',
                  'work_order.assignee.phone is not null',
                  'work_order.assignee.region.code == "XH"',
                  'not (work_order.assignee.phone matches "^138")'
                  ' and work_order.assignee.phone is not null'):
        assert order_id not in _matches(client, token, probe), probe
    # Behind a hidden record every field reads as null, as for a missing record.
    assert order_id in _matches(client, token, "work_order.assignee.phone is null")


def test_an_admin_still_filters_through_every_reference(client, rt, world, token_for) -> None:
    _, order_id = _outsider_on_a_visible_order(rt, world)
    found = _matches(client, token_for("admin"), 'work_order.assignee.phone matches "^139"')
    assert found == [order_id]
