"""Issue #22, finding 2: a flow action's response masked only the record's own fields.

A technician's ``reject`` response carried ``customer.phone`` (technicians may
not read it); a customer's ``cancel`` response carried the assigned
technician's whole profile (customers may not read technicians) and
``customer.tier`` (hidden from customers).
"""

from __future__ import annotations

from typing import Any

from . import api_world

reference_app, rt, client, world, token_for = (api_world.reference_app, api_world.rt,
                                               api_world.client, api_world.world,
                                               api_world.token_for)
auth = api_world.auth


def test_a_technicians_reject_response_has_no_customer_phone(client, world, token_for) -> None:
    order = world["orders"][0]
    res = client.post(f"/api/v1/work_order/{order['id']}/actions/reject",
                      headers=auth(token_for("technician", 0)))
    assert res.status_code == 200, res.get_json()
    customer: dict[str, Any] = res.get_json()["record"]["customer"]
    assert customer["id"] == world["customers"][0]["id"]
    assert "phone" not in customer
    assert customer["name"] == "张伟"  # what the role may read stays


def test_a_customers_cancel_response_has_no_technician_profile_or_tier(client, world,
                                                                       token_for) -> None:
    order = world["orders"][1]
    res = client.post(f"/api/v1/work_order/{order['id']}/actions/cancel",
                      headers=auth(token_for("customer", 1)), json={})
    assert res.status_code == 200, res.get_json()
    record = res.get_json()["record"]
    assert record["assignee"] == {"id": world["techs"][1]["id"]}
    assert "tier" not in record["customer"]
    assert record["customer"]["phone"] == "13800000002"  # their own phone: readable


def test_rejecting_an_offer_of_an_order_one_cannot_read_shows_only_its_id(client, world,
                                                                         token_for) -> None:
    # Order 0 is assigned to technician 0 and offered to both: technician 1 holds an
    # offer but may not read the order (its row filter: orders assigned to them).
    order = world["orders"][0]
    headers = auth(token_for("technician", 1))
    assert client.get(f"/api/v1/work_order/{order['id']}", headers=headers).status_code == 404
    res = client.post(f"/api/v1/work_order/{order['id']}/actions/reject", headers=headers)
    assert res.status_code == 200, res.get_json()
    assert set(res.get_json()["record"]) == {"id", "row_version"}
