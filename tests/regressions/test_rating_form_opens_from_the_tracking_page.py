"""Issue #21.3: the customer's rating form was offered as a create form.

服务评价 on the home page tried to create a new work order and answered
"您无权以这些值保存该记录". It acts on the customer's order: the tracking page
links it once the order awaits feedback, it opens with the order preselected
(after logging in as someone who may read the order) and it updates the order.
"""

from __future__ import annotations

import re

from portal_world import anonymous, csrf_of, login, track_path
from sqlalchemy import func, select

from dispatchflow.platform.records.actors import SYSTEM_ACTOR


def test_the_rating_form_opens_from_the_tracking_page(portal_rt, demo) -> None:
    order = demo["feedback"]
    client = anonymous(portal_rt)
    track = client.get(track_path(client, order)).get_data(as_text=True)
    link = re.search(r'href="([^"]*/forms/customer_feedback)"', track)
    assert link, track
    assert client.get(link.group(1)).status_code == 302  # log in first
    login(client, "demo_customer", demo["passwords"]["demo_customer"])
    home = client.get("/").get_data(as_text=True)
    assert "/forms/customer_feedback" not in home  # never a create form
    page = client.get(link.group(1))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "阳台水管漏水" in html
    with portal_rt.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(
            portal_rt.tables["work_order"])).scalar_one()
    res = client.post(link.group(1), data={"csrf_token": csrf_of(html), "rating": "5",
                                           "feedback": "师傅很专业"})
    assert res.status_code == 303, res.get_data(as_text=True)
    record = portal_rt.records.get(SYSTEM_ACTOR, "work_order", order)
    assert record["rating"] == 5 and record["feedback"] == "师傅很专业"
    assert record["status"] == "closed"  # the bundle's rule closes a rated order
    with portal_rt.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(
            portal_rt.tables["work_order"])).scalar_one()
    assert after == before
    # Rated: the form is no longer offered, and opening it again is refused.
    again = client.get(link.group(1))
    assert again.status_code == 409 and 'class="error-page"' in again.get_data(as_text=True)


def test_the_rating_form_is_not_offered_before_the_work_is_done(portal_rt, demo) -> None:
    client = anonymous(portal_rt)
    page = client.get(track_path(client, demo["in_service"]))
    assert page.status_code == 200 and "customer_feedback" not in page.get_data(as_text=True)
