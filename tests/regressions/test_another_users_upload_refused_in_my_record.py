"""An attachment field accepted any file id (issue #22, finding 8): a customer
could put another user's upload into their own order, and then read it through
that order.

Now a record takes only files its submitter uploaded or that are already on it:
another user's file gets a 422 ``file_unknown`` (the same answer as an id that
does not exist), on create, on update and in an action's form, and nothing is
written. A file that is already on the record may stay when someone else
changes the record.
"""

from __future__ import annotations

from typing import Any

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

from .files_world import ORDER, PNG, make_world, upload


def test_another_users_upload_is_refused_in_my_record(rt: Any, client: Any,
                                                       user_token: Any) -> None:
    w = make_world(rt, user_token)
    mine = upload(client, w["customer_a"], PNG, "mine.png", "image/png")
    theirs = upload(client, w["customer_b"], PNG, "theirs.png", "image/png")

    res = client.post("/api/v1/work_order?lang=en", headers=w["customer_a"], json={
        **ORDER, "customer": w["customer_a_id"], "photos": [mine, theirs]})
    assert res.status_code == 422, res.get_json()
    assert res.get_json()["errors"] == [{
        "field": "photos.1", "code": "file_unknown",
        "message": f"Photos: there is no file {theirs} that you uploaded; upload it first."}]
    unknown = "u" * 32
    res = client.post("/api/v1/work_order?lang=en", headers=w["customer_a"], json={
        **ORDER, "customer": w["customer_a_id"], "photos": [unknown]})
    assert res.get_json()["errors"][0]["message"] == (
        f"Photos: there is no file {unknown} that you uploaded; upload it first.")
    assert client.get(f"/api/v1/files/{theirs}", headers=w["customer_a"]).status_code == 404

    res = client.post("/api/v1/work_order", headers=w["customer_a"], json={
        **ORDER, "customer": w["customer_a_id"], "photos": [mine]})
    assert res.status_code == 201, res.get_json()
    order = res.get_json()
    res = client.patch(f"/api/v1/work_order/{order['id']}", headers={
        **w["customer_a"], "If-Match": client.get(f"/api/v1/work_order/{order['id']}", headers=w["customer_a"]).headers["ETag"]},
        json={"photos": [mine, theirs]})
    assert res.status_code == 422
    assert [e["code"] for e in res.get_json()["errors"]] == ["file_unknown"]

    # The technician it is assigned to completes it: their own photo and the customer's
    # (already on the record) are fine; the other customer's is not.
    res = client.post(f"/api/v1/work_order/{order['id']}/assign", headers=w["dispatcher_pd"],
                      json={"candidate": w["tech_a_id"], "reason": "客户指定", "override": True})
    assert res.status_code == 200, res.get_json()
    for action in ("depart", "arrive", "start_service"):
        res = client.post(f"/api/v1/work_order/{order['id']}/actions/{action}",
                          headers=w["tech_a"])
        assert res.status_code == 200, (action, res.get_json())
    own = upload(client, w["tech_a"], PNG, "after.png", "image/png")
    report = {"resolution": "更换电容", "customer_absent": True}
    res = client.post(f"/api/v1/work_order/{order['id']}/actions/complete", headers=w["tech_a"],
                      json={**report, "photos": [mine, own, theirs]})
    assert res.status_code == 422, res.get_json()
    assert [(e["field"], e["code"]) for e in res.get_json()["errors"]] == [
        ("photos.2", "file_unknown")]
    res = client.post(f"/api/v1/work_order/{order['id']}/actions/complete", headers=w["tech_a"],
                      json={**report, "photos": [mine, own]})
    assert res.status_code == 200, res.get_json()
    assert rt.records.get(SYSTEM_ACTOR, "work_order", order["id"])["photos"] == [mine, own]
    assert client.get(f"/api/v1/files/{own}", headers=w["customer_a"]).status_code == 200
