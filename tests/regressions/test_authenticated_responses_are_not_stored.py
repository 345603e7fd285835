"""Issue #22.8: pages and API answers made for a signed-in user carried no
``Cache-Control: no-store``, so a shared or back-button cache could show them to
the next person at the machine after logout. The login page needs it too."""

from __future__ import annotations

from typing import Any

from dispatchflow.platform.records.users import create_token

from . import webapp
from .webapp import login

client, site = webapp.client, webapp.site  # fixtures


def test_api_answers_to_a_token_are_not_stored(site: Any, client: Any) -> None:
    token = create_token(site.engine, "disp", name="test").token
    for path in ("/api/v1/me", "/api/v1/work_order", "/api/v1/work_order/999999"):
        res = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert res.headers.get("Cache-Control") == "no-store", (path, res.status_code)


def test_pages_of_a_signed_in_user_and_the_login_page_are_not_stored(client: Any) -> None:
    assert client.get("/login").headers.get("Cache-Control") == "no-store"
    res = login(client)
    assert res.headers.get("Cache-Control") == "no-store"
    page = client.get("/forms/repair_request")
    assert page.headers.get("Cache-Control") == "no-store", page.status_code


def test_shared_assets_stay_cacheable(client: Any) -> None:
    login(client)
    res = client.get("/static/forms/dispatchflow-forms.css")
    res.close()  # the file it streams
    assert res.status_code == 200
    assert "no-store" not in res.headers.get("Cache-Control", "")
