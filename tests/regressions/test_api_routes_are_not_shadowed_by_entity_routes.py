"""The API's own paths are not taken for entity names.

``POST /api/v1/me`` used to be routed to "create a record of entity me" (422
"the body must be JSON") instead of 405, ``GET /api/v1/files`` to "list the
entity files", and ``OPTIONS /api/v1/files/0`` advertised PATCH and DELETE:
the generic ``/<entity>`` routes matched the reserved segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_client import ApiClient, api_session


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    yield from api_session(tmp_path)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/api/v1/me", {"GET"}),
    ("POST", "/api/v1/offers", {"GET"}),
    ("POST", "/api/v1/docs", {"GET"}),
    ("GET", "/api/v1/files", {"POST"}),
    ("PATCH", "/api/v1/files/12345", {"GET"}),
    ("DELETE", "/api/v1/files/12345", {"GET"}),
])
def test_a_method_the_path_does_not_have_is_405(api: ApiClient, method: str, path: str,
                                                allowed: set[str]) -> None:
    res = api.client.open(path, method=method, json={}, headers=api.headers)
    assert res.status_code == 405, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    assert allowed <= set(res.headers["Allow"].split(", "))
    assert not {"PATCH", "DELETE"} & set(res.headers["Allow"].split(", ")) - allowed


def test_entity_routes_still_work(api: ApiClient) -> None:
    made = api.client.post("/api/v1/region", json={"code": "PD", "name": "浦东"},
                           headers=api.headers)
    assert made.status_code == 201
    assert api.client.get(f"/api/v1/region/{made.get_json()['id']}",
                          headers=api.headers).status_code == 200
