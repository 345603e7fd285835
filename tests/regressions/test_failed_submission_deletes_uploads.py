"""Issue #22, finding 8: a failed portal submission kept its uploaded files.

Uploads are stored while a post is parsed; when the submission is then refused
(a field error), they are deleted again and the page asks for them anew.
"""

from __future__ import annotations

import io
from typing import Any

from portal_world import PNG, csrf_of, signed_in
from sqlalchemy import func, select

from dispatchflow.platform.store.db import files


def stored_files(rt: Any) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(files)).scalar_one()


def test_a_refused_create_form_keeps_no_files(portal_rt, demo) -> None:
    client = signed_in(portal_rt, demo, "demo_customer")
    page = client.get("/forms/repair_request").get_data(as_text=True)
    before = stored_files(portal_rt)
    res = client.post("/forms/repair_request", data={
        "csrf_token": csrf_of(page), "category": "plumbing", "title": "",  # title missing
        "location_lat": "31.2", "location_lng": "121.5",
        "photos": (io.BytesIO(PNG), "leak.png", "image/png")},
        content_type="multipart/form-data")
    assert res.status_code == 422
    assert stored_files(portal_rt) == before
    html = res.get_data(as_text=True)
    assert 'id="files-discarded"' in html  # the customer is told to choose them again


def test_a_refused_action_form_keeps_no_files(portal_rt, demo) -> None:
    client = signed_in(portal_rt, demo, "demo_technician")
    url = f"/records/work_order/{demo['in_service']}/forms/completion_report"
    page = client.get(url).get_data(as_text=True)
    before = stored_files(portal_rt)
    res = client.post(url, data={
        "csrf_token": csrf_of(page), "resolution": "",  # required
        "photos": (io.BytesIO(PNG), "after.png", "image/png")},
        content_type="multipart/form-data")
    assert res.status_code == 422 and stored_files(portal_rt) == before
