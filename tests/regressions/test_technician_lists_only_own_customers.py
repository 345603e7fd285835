"""Issue #22, finding 8 (part): the reference bundle let technicians list every
customer's address. A technician now reads only the customers of their own orders
(``rows_via: work_order.customer`` in examples/field-service/roles.yaml)."""

from __future__ import annotations

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

from . import api_world

reference_app, rt, client, world, token_for = (api_world.reference_app, api_world.rt,
                                               api_world.client, api_world.world,
                                               api_world.token_for)
auth = api_world.auth


def test_a_technician_lists_only_the_customers_of_own_orders(client, rt, world,
                                                              token_for) -> None:
    rt.records.create(SYSTEM_ACTOR, "customer", {"name": "周先生", "phone": "13800000003",
                                                 "address": "徐汇区漕溪北路 1 号"})
    headers = auth(token_for("technician", 0))  # order 0 (customer 0) is assigned to them
    listed = client.get("/api/v1/customer", headers=headers).get_json()["items"]
    assert [c["id"] for c in listed] == [world["customers"][0]["id"]]
    other = world["customers"][1]["id"]
    assert client.get(f"/api/v1/customer/{other}", headers=headers).status_code == 404
    # Nor through a filter on their own orders: only their orders' customers match.
    found = client.get("/api/v1/work_order", headers=headers,
                       query_string={"filter": "work_order.customer.name is not null"})
    assert [o["id"] for o in found.get_json()["items"]] == [world["orders"][0]["id"]]
