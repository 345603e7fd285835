"""A record or offer id beyond 64 bits is 404, not a server error.

Schemathesis found ``GET /api/v1/work_order/9223372036854775808/actions`` and
``POST /api/v1/offers/9223372036854775808/accept`` answering 500: the database
driver cannot bind such a number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_client import ApiClient, api_session

BEYOND = 2**63


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    yield from api_session(tmp_path)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/api/v1/work_order/{BEYOND}/actions"),
    ("POST", f"/api/v1/work_order/{BEYOND}/actions/cancel"),
    ("GET", f"/api/v1/work_order/{BEYOND}/sla"),
    ("GET", f"/api/v1/work_order/{BEYOND}/dispatch"),
    ("POST", f"/api/v1/offers/{BEYOND}/accept"),
    ("POST", f"/api/v1/offers/{BEYOND}/reject"),
    ("GET", f"/api/v1/work_order/{BEYOND}"),
    ("GET", f"/api/v1/work_order/{10**30}/timeline"),
])
def test_an_id_beyond_64_bits_is_404(api: ApiClient, method: str, path: str) -> None:
    res = api.client.open(path, method=method, json={}, headers=api.headers)
    assert res.status_code == 404, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"


def test_assigning_a_candidate_beyond_64_bits_is_422(api: ApiClient) -> None:
    customer = api.client.post("/api/v1/customer", headers=api.headers,
                               json={"name": "张伟", "phone": "13800000001"}).get_json()
    order = api.client.post("/api/v1/work_order", headers=api.headers, json={
        "title": "空调不制冷", "category": "aircon", "customer": customer["id"],
        "location": {"lat": 31.2, "lng": 121.5}})
    assert order.status_code == 201, order.get_json()
    res = api.client.post(f"/api/v1/work_order/{order.get_json()['id']}/assign",
                          json={"candidate": BEYOND, "reason": "最近"}, headers=api.headers)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
