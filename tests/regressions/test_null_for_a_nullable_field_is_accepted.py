"""``null`` for a nullable field means "no value", on create and on update.

The fuzzer found ``{"unit_cost": null}`` refused with 422 "格式不正确" although
the schema allows null there and leaving the field out gave 201: the coercion
step treated null as a malformed decimal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_client import ApiClient, api_session


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    yield from api_session(tmp_path)


def test_create_with_null_for_nullable_fields_is_201(api: ApiClient) -> None:
    res = api.client.post("/api/v1/spare_part", headers=api.headers,
                          json={"sku": "P-1", "name": "压缩机", "unit_cost": None,
                                "category": None})
    assert res.status_code == 201, res.get_json()
    assert res.get_json()["unit_cost"] is None
    tech = api.client.post("/api/v1/technician", headers=api.headers,
                           json={"name": "王师傅", "rating_30d": None,
                                 "location": {"lat": 31.2, "lng": 121.5}})
    assert tech.status_code == 201, tech.get_json()
    assert tech.get_json()["rating_30d"] is None


def test_update_with_null_clears_the_value(api: ApiClient) -> None:
    made = api.client.post("/api/v1/spare_part", headers=api.headers,
                           json={"sku": "P-2", "name": "阀门", "unit_cost": 12.5}).get_json()
    res = api.client.patch(f"/api/v1/spare_part/{made['id']}", json={"unit_cost": None},
                           headers={**api.headers, "If-Match": f'"{made["row_version"]}"'})
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["unit_cost"] is None


def test_null_for_a_required_field_is_still_refused(api: ApiClient) -> None:
    res = api.client.post("/api/v1/spare_part", headers=api.headers,
                          json={"sku": "P-3", "name": None})
    assert res.status_code == 422
    assert [e["field"] for e in res.get_json()["errors"]] == ["name"]
