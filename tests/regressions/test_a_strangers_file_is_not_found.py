"""Any token holder could download any file by its id (issue #22, finding 8).

A customer's photo on their own order is readable by them, by the technician the
order is assigned to, by dispatchers of its region and by administrators; a
stranger (another customer, another technician, a dispatcher of another region,
finance, whose role does not read ``photos``) gets 404, the same answer as for an
id that does not exist. Downloads are attachments (images excepted) and never
sniffed.
"""

from __future__ import annotations

from typing import Any

from dispatchflow.platform.records.actors import SYSTEM_ACTOR

from .files_world import HTML, ORDER, PNG, make_world, upload


def test_a_file_is_readable_only_through_a_readable_record_or_by_its_uploader(
        rt: Any, client: Any, user_token: Any) -> None:
    w = make_world(rt, user_token)
    photo = upload(client, w["customer_a"], PNG, "门口.png", "image/png")
    page = upload(client, w["tech_b"], HTML, "notes.html", "text/html")

    # Before it is on any record, only the uploader reads it.
    assert client.get(f"/api/v1/files/{photo}", headers=w["customer_a"]).status_code == 200
    assert client.get(f"/api/v1/files/{photo}", headers=w["admin"]).status_code == 404

    res = client.post("/api/v1/work_order", headers=w["customer_a"], json={
        **ORDER, "customer": w["customer_a_id"], "photos": [photo]})
    assert res.status_code == 201, res.get_json()
    order = res.get_json()["id"]
    rt.records.update(SYSTEM_ACTOR, "work_order", order,
                      {"region": w["regions"]["PD"], "assignee": w["tech_a_id"]},
                      expected_version=None)

    for reader in ("customer_a", "tech_a", "dispatcher_pd", "admin"):
        res = client.get(f"/api/v1/files/{photo}", headers=w[reader])
        assert res.status_code == 200, reader
        assert res.data == PNG and res.mimetype == "image/png"
        assert res.headers["Content-Disposition"].startswith("inline;")
        assert res.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.get("/api/v1/files/" + "x" * 32, headers=w["customer_b"])
    for stranger in ("customer_b", "tech_b", "dispatcher_xh", "finance"):
        res = client.get(f"/api/v1/files/{photo}", headers=w[stranger])
        assert res.status_code == 404, stranger
        assert res.get_json() == missing.get_json()  # nothing says the file exists

    res = client.get(f"/api/v1/files/{page}", headers=w["tech_b"])
    assert res.status_code == 200 and res.data == HTML
    assert res.headers["Content-Disposition"].startswith("attachment;")
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/api/v1/files/{page}", headers=w["admin"]).status_code == 404

    # Deleting the order takes the photo out of everyone's reach but the uploader's.
    rt.records.delete(SYSTEM_ACTOR, "work_order", order)
    assert client.get(f"/api/v1/files/{photo}", headers=w["tech_a"]).status_code == 404
    assert client.get(f"/api/v1/files/{photo}", headers=w["customer_a"]).status_code == 200
