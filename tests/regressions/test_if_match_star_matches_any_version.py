"""``If-Match: *`` matches any current representation (RFC 9110, section 13.1.1).

It used to be refused with 422 "If-Match must be the record's ETag".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_client import ApiClient, api_session


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    yield from api_session(tmp_path)


def _region(api: ApiClient) -> dict:
    res = api.client.post("/api/v1/region", headers=api.headers,
                          json={"code": "PD", "name": "浦东"})
    assert res.status_code == 201
    record: dict = res.get_json()
    return record


def test_patch_with_if_match_star_updates_the_current_version(api: ApiClient) -> None:
    region = _region(api)
    url = f"/api/v1/region/{region['id']}"
    api.client.patch(url, json={"name": "浦东新区"}, headers={**api.headers, "If-Match": '"1"'})
    res = api.client.patch(url, json={"name": "浦东新区二"},
                           headers={**api.headers, "If-Match": "*"})
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["name"] == "浦东新区二" and res.headers["ETag"] == '"3"'


def test_if_match_star_on_a_missing_record_is_404(api: ApiClient) -> None:
    res = api.client.patch("/api/v1/region/999", json={"name": "x"},
                           headers={**api.headers, "If-Match": "*"})
    assert res.status_code == 404


@pytest.mark.parametrize("if_match", ["version-one", "", '"1", "2"'])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_malformed_if_match_is_422_and_changes_nothing(api: ApiClient, method: str,
                                                         if_match: str) -> None:
    region = _region(api)
    url = f"/api/v1/region/{region['id']}"
    res = getattr(api.client, method)(url, json={"name": "x"},
                                      headers={**api.headers, "If-Match": if_match})
    assert res.status_code == 422
    assert res.mimetype == "application/problem+json"
    after = api.client.get(url, headers=api.headers)
    assert after.status_code == 200 and after.get_json()["name"] == "浦东"
