"""The REST API against a real database (SQLite and PostgreSQL): the issue's acceptance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from dispatchflow.platform.records.users import create_token, revoke_token
from dispatchflow.platform.store.db import api_tokens, audit_log, outbox

VALID = {"title": "热水器不出热水", "category": "water_heater", "description": "打火后熄灭",
         "location": {"lat": 31.2, "lng": 121.5}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(rt: Any, table: Any) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_create_valid_is_201_with_an_outbox_event_and_audit_row(client, rt, world,
                                                               token_for) -> None:
    before = count(rt, outbox)
    body = {**VALID, "customer": world["customers"][0]["id"]}
    res = client.post("/api/v1/work_order", json=body, headers=bearer(token_for("dispatcher")))
    assert res.status_code == 201, res.get_json()
    record = res.get_json()
    assert record["title"] == "热水器不出热水" and record["priority"] == "P3"  # default
    assert res.headers["Location"].endswith(f"/api/v1/work_order/{record['id']}")
    assert res.headers["ETag"] == '"1"'
    with rt.engine.connect() as conn:
        events = conn.execute(select(outbox).where(outbox.c.record_id == record["id"])
                              .where(outbox.c.entity == "work_order")).mappings().all()
        audits = conn.execute(select(audit_log).where(audit_log.c.record_id == record["id"])
                              .where(audit_log.c.entity == "work_order")).mappings().all()
    # the request stored one event; what its processing emitted comes after it
    assert events[0]["event"] == "created" and events[0]["processed_at"] is not None
    assert all(e["payload"].get("by") for e in events[1:])  # emitted by rules or flows
    assert count(rt, outbox) == before + len(events)
    assert audits[0]["actor"] == "dispatcher0" and audits[0]["channel"] == "api"
    assert audits[0]["changes"]["title"] == [None, "热水器不出热水"]


def test_invalid_is_422_with_field_errors_and_nothing_written(client, rt, world,
                                                             token_for) -> None:
    rows_before, events_before = count(rt, rt.tables["work_order"]), count(rt, outbox)
    body = {**VALID, "customer": world["customers"][0]["id"], "priority": "P9",
            "location": {"lat": 200, "lng": 121.5}}
    del body["title"]
    res = client.post("/api/v1/work_order", json=body, headers=bearer(token_for("dispatcher")))
    assert res.status_code == 422
    assert res.mimetype == "application/problem+json"
    fields = {e["field"] for e in res.get_json()["errors"]}
    assert {"title", "priority"} <= fields and any(f.startswith("location") for f in fields)
    assert count(rt, rt.tables["work_order"]) == rows_before
    assert count(rt, outbox) == events_before


def test_unknown_reference_is_a_field_error(client, world, token_for) -> None:
    body = {**VALID, "customer": 999999}
    res = client.post("/api/v1/work_order", json=body, headers=bearer(token_for("dispatcher")))
    assert res.status_code == 422
    assert [e["field"] for e in res.get_json()["errors"]] == ["customer"]


def test_update_needs_the_current_version_and_stale_is_409(client, world, token_for) -> None:
    order = world["orders"][0]
    token = bearer(token_for("dispatcher"))
    url = f"/api/v1/work_order/{order['id']}"
    assert client.patch(url, json={"priority": "P2"}, headers=token).status_code == 428
    # processing the order (triage, flow, dispatch) has moved its version on already
    etag = client.get(url, headers=token).headers["ETag"]
    ok = client.patch(url, json={"priority": "P2"}, headers={**token, "If-Match": etag})
    assert ok.status_code == 200 and ok.get_json()["priority"] == "P2"
    assert int(ok.headers["ETag"].strip('"')) > int(etag.strip('"'))
    stale = client.patch(url, json={"priority": "P1"}, headers={**token, "If-Match": etag})
    assert stale.status_code == 409
    assert client.get(url, headers=token).get_json()["priority"] == "P2"
    history = client.get(url + "/timeline", headers=token).get_json()["items"]
    # the platform's own changes (triage, flow) are action "system"; these were requested
    by_people = [h for h in history if h["kind"] == "change" and h["action"] != "system"]
    assert [h["action"] for h in by_people] == ["create", "update"]
    assert by_people[1]["changes"]["priority"] == ["P3", "P2"]


def test_technicians_see_only_their_own_orders(client, world, token_for) -> None:
    mine, theirs = world["orders"]
    token = bearer(token_for("technician", 0))
    assert client.get(f"/api/v1/work_order/{mine['id']}", headers=token).status_code == 200
    res = client.get(f"/api/v1/work_order/{theirs['id']}", headers=token)
    assert res.status_code == 404
    listed = client.get("/api/v1/work_order", headers=token).get_json()["items"]
    assert [o["id"] for o in listed] == [mine["id"]]
    assert "cost_labor" not in listed[0]  # hidden from technicians


def test_finance_sees_costs_and_no_phone(client, world, token_for) -> None:
    token = bearer(token_for("finance"))
    order = client.get(f"/api/v1/work_order/{world['orders'][0]['id']}", headers=token)
    assert order.status_code == 200
    body = order.get_json()
    assert body["cost_labor"] == 120.0 and "contact_phone" not in body
    customer = client.get(f"/api/v1/customer/{world['customers'][0]['id']}", headers=token)
    assert "phone" not in customer.get_json() and customer.get_json()["name"] == "张伟"
    # Finance may read but not change orders.
    res = client.patch(f"/api/v1/work_order/{world['orders'][0]['id']}",
                       json={"priority": "P1"}, headers={**token, "If-Match": '"1"'})
    assert res.status_code == 403


def test_forged_expired_and_revoked_tokens_are_401(client, rt, token_for) -> None:
    assert client.get("/api/v1/work_order").status_code == 401
    forged = client.get("/api/v1/work_order", headers=bearer("dft_" + "x" * 43))
    assert forged.status_code == 401 and forged.headers["WWW-Authenticate"].startswith("Bearer")
    token = token_for("dispatcher")
    assert client.get("/api/v1/work_order", headers=bearer(token)).status_code == 200
    with rt.engine.begin() as conn:
        conn.execute(update(api_tokens).values(
            expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    assert client.get("/api/v1/work_order", headers=bearer(token)).status_code == 401
    fresh = create_token(rt.engine, "dispatcher0", name="fresh")
    assert client.get("/api/v1/work_order", headers=bearer(fresh.token)).status_code == 200
    assert revoke_token(rt.engine, fresh.id)
    assert client.get("/api/v1/work_order", headers=bearer(fresh.token)).status_code == 401


def test_token_scopes_restrict_the_user(client, world, token_for) -> None:
    read_only = bearer(token_for("dispatcher", scopes=["work_order:read"]))
    assert client.get("/api/v1/work_order", headers=read_only).status_code == 200
    body = {**VALID, "customer": world["customers"][0]["id"]}
    assert client.post("/api/v1/work_order", json=body, headers=read_only).status_code == 403


def test_customers_create_only_their_own_requests(client, world, token_for) -> None:
    token = bearer(token_for("customer", 0))
    own = {**VALID, "customer": world["customers"][0]["id"]}
    assert client.post("/api/v1/work_order", json=own, headers=token).status_code == 201
    other = {**VALID, "customer": world["customers"][1]["id"]}
    res = client.post("/api/v1/work_order", json=other, headers=token)
    assert res.status_code == 422
    listed = client.get("/api/v1/work_order", headers=token).get_json()["items"]
    assert {o["customer"] for o in listed} == {world["customers"][0]["id"]}


def test_list_filter_sort_and_cursor(client, rt, world, token_for) -> None:
    token = bearer(token_for("dispatcher"))
    for i in range(5):
        client.post("/api/v1/work_order", headers=token, json={
            **VALID, "title": f"批量 {i}", "customer": world["customers"][1]["id"],
            "priority": "P1" if i % 2 else "P4"})
    res = client.get('/api/v1/work_order?filter=work_order.priority == "P1"&sort=-id&limit=1',
                     headers=token)
    page = res.get_json()
    assert [o["title"] for o in page["items"]] == ["批量 3"]
    nxt = client.get(f'/api/v1/work_order?filter=work_order.priority == "P1"&sort=-id&limit=1'
                     f'&cursor={page["next_cursor"]}', headers=token).get_json()
    assert [o["title"] for o in nxt["items"]] == ["批量 1"] and nxt["next_cursor"] is None
    bad = client.get("/api/v1/work_order?filter=work_order.prioirty == 1", headers=token)
    assert bad.status_code == 400 and "priority" in (bad.get_json().get("hint") or "")


def test_soft_delete_hides_the_record_but_keeps_history(client, rt, world, token_for) -> None:
    token = bearer(token_for("admin"))
    url = f"/api/v1/work_order/{world['orders'][1]['id']}"
    assert client.delete(url, headers=token).status_code == 204
    assert client.get(url, headers=token).status_code == 404
    with rt.engine.connect() as conn:
        row = conn.execute(select(rt.tables["work_order"]).where(
            rt.tables["work_order"].c.id == world["orders"][1]["id"])).mappings().one()
    assert row["deleted_at"] is not None


def test_openapi_document_is_valid(client) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert "/api/v1/work_order" in doc["paths"]
    assert doc["components"]["schemas"]["work_orderCreate"]["properties"]["priority"]["enum"]


def test_filtering_on_a_hidden_field_is_refused(client, world, token_for) -> None:
    token = bearer(token_for("technician", 0))
    res = client.get("/api/v1/work_order?filter=work_order.cost_labor > 100", headers=token)
    assert res.status_code == 403 and "cost_labor" in res.get_json()["detail"]
