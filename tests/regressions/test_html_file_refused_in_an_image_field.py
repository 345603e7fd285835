"""An attachment field accepted a file of any type (issue #22, finding 8): a
``text/html`` upload stored in ``work_order.photos`` (``accept: [image/*]``).

Now the field takes only files whose type, recognised from their content at
upload, fits its ``accept`` list: an HTML page is refused whether it is sent as
``text/html`` or claims to be ``image/png``, with a 422 naming the item, and
nothing is written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from .files_world import HTML, ORDER, PNG, make_world, upload


def count_orders(rt: Any) -> int:
    table = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_an_html_page_is_refused_in_an_image_field(rt: Any, client: Any,
                                                    user_token: Any) -> None:
    w = make_world(rt, user_token)
    me = w["customer_a"]
    page = upload(client, me, HTML, "photo.html", "text/html")
    disguised = upload(client, me, HTML, "photo.png", "image/png")
    photo = upload(client, me, PNG, "photo.png", "image/png")
    before = count_orders(rt)

    res = client.post("/api/v1/work_order?lang=en", headers=me, json={
        **ORDER, "customer": w["customer_a_id"], "photos": [photo, page, disguised]})
    assert res.status_code == 422, res.get_json()
    errors = {e["field"]: e for e in res.get_json()["errors"]}
    assert sorted(errors) == ["photos.1", "photos.2"]
    assert errors["photos.1"]["code"] == "file_type"
    assert errors["photos.1"]["message"] == (
        "Photos does not accept photo.html (text/html); allowed: image/*.")
    assert errors["photos.2"]["code"] == "file_type"
    assert count_orders(rt) == before
    # The disguised page was stored as what it is, and is served as a download.
    res = client.get(f"/api/v1/files/{disguised}", headers=me)
    assert res.mimetype == "application/octet-stream"
    assert res.headers["Content-Disposition"].startswith("attachment;")

    res = client.post("/api/v1/work_order", headers=me, json={
        **ORDER, "customer": w["customer_a_id"], "photos": [photo]})
    assert res.status_code == 201, res.get_json()
    order = res.get_json()
    res = client.patch(f"/api/v1/work_order/{order['id']}", headers={
        **me, "If-Match": client.get(f"/api/v1/work_order/{order['id']}", headers=me).headers["ETag"]}, json={"photos": [photo, page]})
    assert res.status_code == 422
    assert [e["field"] for e in res.get_json()["errors"]] == ["photos.1"]
