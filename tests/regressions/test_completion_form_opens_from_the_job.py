"""Issue #21.3: the completion report was offered as a create form.

The technician's home listed 完工报告 with no way to choose the order, and
submitting it tried to create a new work order (an uncaught PermissionDenied:
a bare "Internal Server Error"). A form that a flow action names acts on an
existing record: it opens from the technician's job, with the job preselected
and checked for access, and submitting it takes the flow action.
"""

from __future__ import annotations

import io
from typing import Any

from portal_world import PNG, csrf_of, signed_in
from sqlalchemy import func, select

from dispatchflow.platform.records.actors import SYSTEM_ACTOR


def orders(rt: Any) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rt.tables["work_order"])
                            ).scalar_one()


def test_the_completion_report_is_not_a_create_form(portal_rt, demo) -> None:
    client = signed_in(portal_rt, demo, "demo_technician")
    home = client.get("/").get_data(as_text=True)
    assert "/forms/completion_report" not in home
    before = orders(portal_rt)
    page = client.get("/forms/completion_report")
    # It sends the technician to the jobs it can be filled in on.
    assert page.status_code == 303
    assert page.headers["Location"].endswith("/records/work_order?form=completion_report")
    res = client.post("/forms/completion_report",
                      data={"resolution": "done", "csrf_token": csrf_of(home)})
    assert res.status_code == 303 and orders(portal_rt) == before


def test_the_completion_report_opens_from_the_job_and_completes_it(portal_rt, demo) -> None:
    job = demo["in_service"]
    client = signed_in(portal_rt, demo, "demo_technician")
    listing = client.get("/records/work_order?form=completion_report").get_data(as_text=True)
    form_url = f"/records/work_order/{job}/forms/completion_report"
    assert form_url in listing
    assert f"/records/work_order/{demo['feedback']}/forms/" not in listing  # not offered there
    page = client.get(form_url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "卫生间水管漏水" in html  # the job, preselected
    before = orders(portal_rt)
    res = client.post(form_url, data={
        "csrf_token": csrf_of(html), "resolution": "更换了进水阀", "customer_absent": "true",
        "photos": (io.BytesIO(PNG), "after.png", "image/png")},
        content_type="multipart/form-data")
    assert res.status_code == 303, res.get_data(as_text=True)
    assert res.headers["Location"].endswith(f"/records/work_order/{job}?done=completion_report")
    record = portal_rt.records.get(SYSTEM_ACTOR, "work_order", job)
    assert record["status"] == "completed" and record["resolution"] == "更换了进水阀"
    assert len(record["photos"]) == 1 and orders(portal_rt) == before
    done = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "已完工，等待客户确认" in done  # the form's success message


def test_another_technicians_job_is_not_reachable(portal_rt, demo) -> None:
    other = portal_rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "别人的工单", "category": "electrical", "customer": demo["customer"],
        "location": {"lat": 31.2, "lng": 121.58}, "channel": "phone"})
    client = signed_in(portal_rt, demo, "demo_technician")
    res = client.get(f"/records/work_order/{other['id']}/forms/completion_report")
    assert res.status_code == 404
    assert 'class="error-page"' in res.get_data(as_text=True)
