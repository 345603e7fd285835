"""Issue #22, finding 8: a tracking link kept working for 30 days after the order was
cancelled.

A tracking link now ends once the order's flow has ended (closed or
cancelled: the flow's final states) and the bundle's grace period
(app.yaml ``portal.tracking_grace``, 3d in the reference app) has passed;
an ended link answers 410 with the site's page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal_world import anonymous, cancel_now, track_path

from dispatchflow.platform.records.actors import SYSTEM_ACTOR


def test_a_tracking_link_ends_after_cancel_plus_grace(portal_rt, demo) -> None:
    client = anonymous(portal_rt)
    order = portal_rt.records.create(SYSTEM_ACTOR, "work_order", {  # the demo customer's
        "title": "热水器不出热水", "category": "water_heater", "customer": demo["customer"],
        "location": {"lat": 31.23, "lng": 121.51}, "channel": "phone"})["id"]
    track = track_path(client, order)
    assert client.get(track).status_code == 200
    cancelled_at = cancel_now(portal_rt, "demo_customer", order)
    portal_rt.clock = lambda: cancelled_at + timedelta(days=2, hours=23)
    within = client.get(track)
    assert within.status_code == 200 and "已取消" in within.get_data(as_text=True)
    portal_rt.clock = lambda: cancelled_at + timedelta(days=3, minutes=1)
    ended = client.get(track)
    assert ended.status_code == 410
    html = ended.get_data(as_text=True)
    assert 'class="error-page"' in html and "链接已失效" in html
    assert client.get(f"{track}?lang=en").status_code == 410


def test_a_running_order_keeps_its_link(portal_rt, demo) -> None:
    client = anonymous(portal_rt)
    track = track_path(client, demo["in_service"])
    portal_rt.clock = lambda: datetime.now(UTC) + timedelta(days=20)
    assert client.get(track).status_code == 200
