"""A tracking page's status part: one fragment route under the same token rules as the page,
showing exactly what the page shows; the page works without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from tests.live_stream import order_near, people
from tests.portal_world import anonymous, track_path


def status_part(page: str) -> str:
    """The inner HTML of the page's ``#track-status`` element."""
    match = re.search(r'<div id="track-status"[^>]*>(.*?)</div>\s*</div>\s*</main>', page, re.S)
    assert match, page
    return match.group(1).strip()


def test_the_fragment_is_the_pages_status_part(rt: Runtime) -> None:
    world = people(rt)
    order = order_near(rt, world, 0)
    client = anonymous(rt)
    path = track_path(client, order)
    page = client.get(path).get_data(as_text=True)
    fragment = client.get(path + "/status")
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True).strip()
    assert html == status_part(page)
    assert "<html" not in html and 'class="record"' in html and "空调不制冷 0" in html
    # Served under the page's CSP: an external module, no inline script.
    assert re.search(r'<script type="module" src="/static/dist/portal-live\.js">', page)
    assert "<script>" not in page and "hx-on" not in page and "js:" not in page
    token = path.removeprefix("/track/")
    assert f'sse-connect="/live?track={token}"' in page
    assert f'hx-get="{path}/status"' in page


def test_the_fragment_follows_the_record(rt: Runtime) -> None:
    world = people(rt)
    order = order_near(rt, world, 0)
    client = anonymous(rt)
    path = track_path(client, order)
    rt.records.update(SYSTEM_ACTOR, "work_order", order, {"title": "空调漏水了"},
                      expected_version=None)
    assert "空调漏水了" in client.get(path + "/status").get_data(as_text=True)


def test_a_forged_token_gets_404_for_the_fragment(rt: Runtime) -> None:
    client = anonymous(rt)
    assert client.get("/track/forged-token/status").status_code == 404
    assert client.get("/track/forged-token").status_code == 404


def test_the_static_bundle_is_served(rt: Runtime) -> None:
    response: Any = anonymous(rt).get("/static/dist/portal-live.js")
    assert response.status_code == 200
    assert b"defineExtension" in response.get_data()
    response.close()
