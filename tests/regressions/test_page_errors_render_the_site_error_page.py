"""Issue #21.3: a page error answered a bare "Internal Server Error".

Every error on a page now renders the site's own error page, in the visitor's
language, with the right status and a next step; an unexpected exception is a
styled 500, never Werkzeug's bare one.
"""

from __future__ import annotations

import pytest
from portal_world import anonymous, signed_in


def page_of(res) -> str:
    html = res.get_data(as_text=True)
    assert 'class="error-page"' in html and 'href="/"' in html, html  # ours, with a way on
    return html


def test_a_forbidden_page_is_a_403_page_with_a_next_step(portal_rt, demo) -> None:
    client = signed_in(portal_rt, demo, "demo_finance")  # finance may not read regions
    res = client.get("/records/spare_part/1")
    assert res.status_code == 404  # no such spare part: a 404 page, not an exception
    page_of(res)
    res = client.get("/records/region")
    assert res.status_code == 403
    assert "您没有权限" in page_of(res)
    res = client.get("/records/region?lang=en")
    assert res.status_code == 403 and "You are not allowed" in page_of(res)


def test_an_unexpected_failure_is_the_sites_500_page(portal_rt, demo,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = anonymous(portal_rt)

    def broken() -> None:
        raise RuntimeError("database went away")
    monkeypatch.setattr(portal_rt, "refresh", broken)
    res = client.get("/")
    assert res.status_code == 500
    html = page_of(res)
    assert "服务器出错了" in html and "database went away" not in html
    res = client.get("/?lang=en")
    assert res.status_code == 500 and "The server failed" in page_of(res)
    # Machines still get problem+json.
    api = client.get("/api/v1/work_order", headers={"Authorization": "Bearer nope"})
    assert api.headers["Content-Type"].startswith("application/problem+json")


def test_an_unknown_page_is_a_404_page(portal_rt) -> None:
    client = anonymous(portal_rt)
    res = client.get("/no/such/page")
    assert res.status_code == 404
    assert "找不到" in page_of(res)
