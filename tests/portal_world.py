"""A demo world for page tests: the reference app with `serve --demo` data, one order in
service for the demo technician and one awaiting feedback from the demo customer.

Plain functions (fixtures live in the conftest files that use them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.demo.seed import seed_records, seed_users
from dispatchflow.platform.dispatch.manual import assign_by_hand
from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
from dispatchflow.platform.records.files import store_file
from dispatchflow.platform.records.users import load_actor
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.platform.store.versions import publish
from dispatchflow.web.app import create_app
from dispatchflow.web.tracking import tracking_token

REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "field-service"

#: A PNG header: enough for the upload checks that sniff the type.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def csrf_of(html: str) -> str:
    """The CSRF token of a page's first form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: Any, user: str, password: str) -> None:
    """Sign ``client`` in through the login page."""
    page = client.get("/login").get_data(as_text=True)
    res = client.post("/login", data={"username": user, "password": password,
                                      "csrf_token": csrf_of(page)})
    assert res.status_code == 302, res.get_data(as_text=True)


def order_for(rt: Runtime, technician: int, customer: int, title: str) -> int:
    """A new appliance order of ``customer`` that the dispatcher assigns to the demo
    technician (``technician``), who departs, arrives and starts it: in service. (The
    demo city has technicians nearer to it, so it is assigned rather than offered.)"""
    order = rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": title, "category": "appliance", "customer": customer,
        "location": {"lat": 31.23, "lng": 121.51}, "address": "浦东新区世纪大道100号",
        "channel": "phone", "contact_phone": "13800000001"})
    rid = int(order["id"])
    tech = load_actor(rt.engine, "demo_technician")
    assert tech is not None
    dispatcher = Actor("dispatcher", roles=("dispatcher",), attributes={"regions": ["PD", "XH"]})
    assign_by_hand(rt, dispatcher, "work_order", rid, technician, "客户指定刘师傅",
                   override=True)
    for action in ("depart", "arrive", "start_service"):
        take_action(rt, tech, "work_order", rid, action)
    return rid


def complete(rt: Runtime, record_id: int) -> None:
    """The demo technician completes the order; the demo customer confirms it."""
    tech = load_actor(rt.engine, "demo_technician")
    customer = load_actor(rt.engine, "demo_customer")
    assert tech is not None and customer is not None
    photo = store_file(rt.engine, PNG, filename="after.png", content_type="image/png",
                       created_by=tech.user_id, max_bytes=1 << 20).id
    take_action(rt, tech, "work_order", record_id, "complete",
                {"resolution": "更换了水管接头", "photos": [photo], "customer_absent": True})
    take_action(rt, customer, "work_order", record_id, "confirm_completion")


def demo_world(rt: Runtime) -> dict[str, Any]:
    """Demo records and users, plus an order in service and one awaiting feedback."""
    seed_records(rt)
    passwords = {user: password for user, _, password in seed_users(rt)}
    tech = load_actor(rt.engine, "demo_technician")
    customer = load_actor(rt.engine, "demo_customer")
    assert tech is not None and customer is not None
    tech_id, customer_id = int(tech.attributes["technician"]), int(customer.attributes["customer"])
    in_service = order_for(rt, tech_id, customer_id, "卫生间水管漏水")
    rated = order_for(rt, tech_id, customer_id, "阳台水管漏水")
    complete(rt, rated)
    name = rt.records.get(SYSTEM_ACTOR, "technician", tech_id)["name"]
    return {"passwords": passwords, "in_service": in_service, "feedback": rated,
            "technician": tech_id, "technician_name": name, "customer": customer_id}


def published_runtime(database_url: str, home: Path) -> Runtime:
    """A runtime on ``database_url`` with the reference app published."""
    rt = Runtime(Settings.from_env(home=home, database_url=database_url,
                                   secret_key="test-secret"))
    app = compile_bundle(REFERENCE).app
    assert app is not None
    publish(rt.engine, app, created_by="test")
    rt.refresh()
    return rt


def signed_in(rt: Runtime, world: dict[str, Any], user: str) -> Any:
    """A test client of a new web app for ``rt``, signed in as ``user`` (a demo user)."""
    client = anonymous(rt)
    login(client, user, world["passwords"][user])
    return client


def anonymous(rt: Runtime) -> Any:
    """A test client of a new web app for ``rt``, not signed in."""
    return create_app(runtime=rt, TESTING=True).test_client()


def cancel_now(rt: Runtime, user: str, record_id: int) -> datetime:
    """Cancel the work order as ``user`` with ``rt``'s clock stopped at now; that time."""
    cancelled_at = datetime.now(UTC)
    rt.clock = lambda: cancelled_at
    actor = load_actor(rt.engine, user)
    assert actor is not None
    take_action(rt, actor, "work_order", record_id, "cancel")
    return cancelled_at


def track_path(client: Any, record_id: int, entity: str = "work_order") -> str:
    """The path of the tracking page of a record (a fresh signed link)."""
    with client.application.test_request_context():
        return "/track/" + tracking_token(entity, record_id)
