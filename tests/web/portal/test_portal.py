"""Portal pages through the Flask test client: login, CSRF, server-side field errors."""

from __future__ import annotations

import re
from typing import Any

from portal_world import csrf_of, login
from sqlalchemy import func, select

from dispatchflow.platform.records.users import add_user


def customer_client(rt: Any, client: Any, world: dict[str, Any]) -> None:
    add_user(rt.engine, "cust", name="张伟", password="pw", roles=["customer"],
             attributes={"customer": world["customers"][0]["id"]})
    login(client, "cust", "pw")


FORM = {"category": "plumbing", "title": "厨房水管漏水", "description": "水管爆裂",
        "location_lat": "31.2", "location_lng": "121.5", "address": "世纪大道100号"}


def count(rt: Any) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rt.tables["work_order"])
                            ).scalar_one()


def test_forms_need_login_and_csrf(client, rt, world) -> None:
    assert client.get("/forms/repair_request").status_code == 302  # to the login page
    customer_client(rt, client, world)
    before = count(rt)
    res = client.post("/forms/repair_request", data=FORM)  # no CSRF token
    assert res.status_code == 400 and count(rt) == before


def test_server_errors_appear_next_to_the_field_and_nothing_is_written(client, rt,
                                                                     world) -> None:
    customer_client(rt, client, world)
    page = client.get("/forms/repair_request").get_data(as_text=True)
    before = count(rt)
    res = client.post("/forms/repair_request",
                      data={**FORM, "title": "", "csrf_token": csrf_of(page)})
    assert res.status_code == 422 and count(rt) == before
    html = res.get_data(as_text=True)
    error = re.search(r'<p class="field-error" id="title-error"([^>]*)>([^<]*)</p>', html)
    assert error and "hidden" not in error.group(1) and "标题" in error.group(2)
    assert 'aria-invalid="true"' in html
    assert 'value="水管爆裂"' not in html or "水管爆裂" in html  # the input is kept


def test_a_valid_submission_redirects_to_a_tracking_link(client, rt, world) -> None:
    customer_client(rt, client, world)
    page = client.get("/forms/repair_request").get_data(as_text=True)
    res = client.post("/forms/repair_request",
                      data={**FORM, "csrf_token": csrf_of(page), "channel": "phone",
                            "customer": str(world["customers"][1]["id"])})
    assert res.status_code == 302 and "/forms/repair_request/done" in res.headers["Location"]
    with rt.engine.connect() as conn:
        row = conn.execute(select(rt.tables["work_order"]).order_by(
            rt.tables["work_order"].c.id.desc())).mappings().first()
    # Hidden fields come from the form and the signed-in user, not from the browser.
    assert row["channel"] == "web" and row["customer"] == world["customers"][0]["id"]
    done = client.get(res.headers["Location"]).get_data(as_text=True)
    track = re.search(r'id="tracking-link" href="([^"]+)"', done)
    assert track
    client.post("/logout", data={"csrf_token": csrf_of(done)})
    status = client.get(track.group(1).replace("http://localhost", ""))
    assert status.status_code == 200 and "厨房水管漏水" in status.get_data(as_text=True)
    assert client.get("/track/forged-token").status_code == 404


def test_security_headers(client) -> None:
    res = client.get("/login")
    assert "script-src 'self'" in res.headers["Content-Security-Policy"]
    assert res.headers["X-Frame-Options"] == "DENY"
