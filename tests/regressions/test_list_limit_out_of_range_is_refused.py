"""``limit`` outside 1..MAX_PAGE_SIZE is a 422 naming ``limit``, never silently clamped.

``?limit=0`` and ``?limit=-5`` used to answer 200 with one record although the
document says ``minimum: 1``; ``?limit=100000`` quietly gave 500 records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatchflow.platform import defaults

from .api_client import ApiClient, api_session


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    for api in api_session(tmp_path):
        api.client.post("/api/v1/region", headers=api.headers,
                        json={"code": "PD", "name": "浦东"})
        yield api


@pytest.mark.parametrize("limit", ["0", "-5", str(defaults.MAX_PAGE_SIZE + 1), "1.5", "abc",
                                   "", " 5", "+5", "٥"])
def test_a_limit_out_of_range_is_422_problem_json(api: ApiClient, limit: str) -> None:
    res = api.client.get("/api/v1/region", query_string={"limit": limit}, headers=api.headers)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    assert [e["field"] for e in res.get_json()["errors"]] == ["limit"]


@pytest.mark.parametrize("limit", ["1", str(defaults.MAX_PAGE_SIZE)])
def test_limits_at_the_bounds_are_accepted(api: ApiClient, limit: str) -> None:
    res = api.client.get("/api/v1/region", query_string={"limit": limit}, headers=api.headers)
    assert res.status_code == 200
    assert len(res.get_json()["items"]) == 1


def test_the_document_states_the_bounds_the_code_enforces(api: ApiClient) -> None:
    doc = api.client.get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/region"]["get"]["parameters"]}
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["maximum"] == defaults.MAX_PAGE_SIZE
