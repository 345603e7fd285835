"""Schemathesis against the generated OpenAPI document: no 5xx, no schema violations,
nothing invalid accepted.

Bounded (a few examples per operation) so it fits the test run; runs in process
on SQLite with the reference app published, the channels' secrets set and one
caller with the widest rights (admin, dispatcher and supervisor roles). The
deeper run against a served app, stateful links included, is ``.ci/api-fuzz``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from reference_runtime import published_runtime
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user, create_token
from dispatchflow.web.app import create_app


@pytest.fixture
def fuzz_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Signed channels then answer 401 for an unsigned body, not 503 "not configured".
    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", "fuzz-wechat")
    monkeypatch.setenv("EMAIL_CHANNEL_SECRET", "fuzz-email")
    rt = published_runtime(tmp_path, "fuzz")
    region = rt.records.create(SYSTEM_ACTOR, "region", {"code": "PD", "name": "浦东"})
    customer = rt.records.create(SYSTEM_ACTOR, "customer", {"name": "张伟", "phone": "13800000001",
                                                            "region": region["id"]})
    rt.records.create(SYSTEM_ACTOR, "work_order", {
        "title": "漏水", "category": "plumbing", "customer": customer["id"],
        "location": {"lat": 31.2, "lng": 121.5}})
    add_user(rt.engine, "fuzz_admin", name="fuzz", password="x",
             roles=["admin", "dispatcher", "area_supervisor"])
    app = create_app(runtime=rt, TESTING=True)
    app.config["FUZZ_TOKEN"] = create_token(rt.engine, "fuzz_admin", name="fuzz").token
    return app


@pytest.fixture
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_matches_its_schema(case: Any, fuzz_app: Any) -> None:
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    case.call_and_validate(headers=headers, checks=[
        not_a_server_error, response_schema_conformance, content_type_conformance,
        status_code_conformance, negative_data_rejection])
