"""The OpenAPI document is generated from the routes: every route is in it, nothing else.

Compares Flask's URL map with the document both ways (each route and method is
reached by some documented operation; each documented operation reaches a
route), and checks that a route added without a description shows up as
``x-undocumented`` instead of silently missing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate
from reference_runtime import published_runtime
from werkzeug.exceptions import MethodNotAllowed, NotFound

from dispatchflow.web.api.openapi import METHODS, documented_rules
from dispatchflow.web.app import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rt = published_runtime(tmp_path_factory.mktemp("openapi"), "openapi")
    yield create_app(runtime=rt, TESTING=True)
    rt.engine.dispose()


@pytest.fixture
def fresh(served: Flask) -> Flask:
    """Another app on the same runtime, to add a route to before its first request."""
    app: Flask = create_app(runtime=served.extensions["dispatchflow"], TESTING=True)
    return app


def _document(app: Flask) -> dict[str, Any]:
    res = app.test_client().get("/api/v1/openapi.json")
    assert res.status_code == 200
    doc: dict[str, Any] = res.get_json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items() if method in METHODS]


def _sample(path: str, op: dict[str, Any], item: dict[str, Any]) -> str:
    """The path with a value for each parameter, as a client would send it."""
    params = {p["name"]: p for p in op.get("parameters", []) + item.get("parameters", [])
              if p["in"] == "path"}

    def value(match: re.Match[str]) -> str:
        schema = params[match[1]]["schema"]
        if "enum" in schema:
            return str(schema["enum"][0])
        return "1" if schema["type"] == "integer" else "sample"
    return re.sub(r"\{(\w+)\}", value, path)


def _endpoint(app: Flask, path: str, method: str) -> str | None:
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _args = adapter.match(path, method.upper())
    except (NotFound, MethodNotAllowed):
        return None
    return str(endpoint)


def test_every_route_and_method_is_documented(served: Flask) -> None:
    doc = _document(served)
    reached = {(_endpoint(served, _sample(path, op, doc["paths"][path]), method), method)
               for path, method, op in _operations(doc)}
    missing = [(rule.rule, method) for rule in documented_rules(served.url_map)
               for method in METHODS if method.upper() in (rule.methods or ())
               if (rule.endpoint, method) not in reached]
    assert missing == []
    assert len(documented_rules(served.url_map)) >= 20  # api, flows, escalations, channels


def test_every_documented_operation_is_routed_and_described(served: Flask) -> None:
    doc = _document(served)
    for path, method, op in _operations(doc):
        sample = _sample(path, op, doc["paths"][path])
        assert _endpoint(served, sample, method) is not None, (method, path)
        assert not op.get("x-undocumented"), (method, path)
    ids = [op["operationId"] for _p, _m, op in _operations(doc)]
    assert len(ids) == len(set(ids))


def test_the_job_operations_are_there(served: Flask) -> None:
    doc = _document(served)
    ids = {op["operationId"] for _p, _m, op in _operations(doc)}
    assert {"create_work_order", "action_work_order_accept", "action_work_order_complete",
            "assign_work_order", "dispatch_work_order", "sla_work_order", "my_offers",
            "accept_offer", "reject_offer", "upload_file", "download_file", "me",
            "acknowledge_work_order_offer_unanswered", "channel_wechat",
            "channel_email_email", "timeline_work_order"} <= ids
    assert len(ids) > 36


def test_links_name_existing_operations(served: Flask) -> None:
    doc = _document(served)
    ids = {op["operationId"] for _p, _m, op in _operations(doc)}
    links = [link for _p, _m, op in _operations(doc) for res in op["responses"].values()
             for link in res.get("links", {}).values()]
    assert links and all(link["operationId"] in ids for link in links)
    created = doc["paths"]["/api/v1/work_order"]["post"]["responses"]["201"]["links"]
    assert created["action_accept"]["parameters"] == {"record_id": "$response.body#/id"}


def test_the_document_is_valid_openapi_3_1(served: Flask) -> None:
    validate(_document(served))


def test_a_route_without_a_description_is_flagged(fresh: Flask) -> None:
    fresh.add_url_rule("/api/v1/<entity>/<int:record_id>/new_thing", "api.new_thing",
                       lambda entity, record_id: "", methods=["POST"])
    doc = _document(fresh)
    flagged = [(p, m) for p, m, op in _operations(doc) if op.get("x-undocumented")]
    assert flagged == [("/api/v1/{entity}/{record_id}/new_thing", "post")]


def test_the_document_and_the_docs_page_need_no_token(served: Flask) -> None:
    client = served.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 200
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assert '<script type="module" src="/static/dist/api-docs.js">' in html
    assert "<script>" not in html and "style=" not in html  # nothing inline (CSP)
    assert client.get("/api/v1/me").status_code == 401
    for asset in ("api-docs.js", "api-docs-style.css", "THIRD-PARTY-LICENSES.txt"):
        with client.get(f"/static/dist/{asset}") as res:
            assert res.status_code == 200


def test_static_api_segments_are_reserved_from_entity_names(served: Flask) -> None:
    from dispatchflow.web.api.records import RESERVED_SEGMENTS

    static = {rule.rule.split("/")[3] for rule in documented_rules(served.url_map)
              if rule.rule.startswith("/api/v1/") and not rule.rule.split("/")[3].startswith("<")}
    assert static == set(RESERVED_SEGMENTS)
