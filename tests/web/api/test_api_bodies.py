"""Bad bodies on every endpoint that takes one: 4xx problem+json, nothing written.

The endpoints come from the OpenAPI document (so a new one is covered without
editing this file). Each gets no body, ``null``, JSON that is not an object,
malformed JSON, a wrong Content-Type, a body over the size limit, and ``{}``
(which must be refused wherever the document says it is not enough).
Channels are signed correctly, so it is the body that is judged, not the
signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatchflow.platform.store.db import SYSTEM

SECRETS = {"WECHAT_WEBHOOK_SECRET": "bodies-wechat", "EMAIL_CHANNEL_SECRET": "bodies-email"}

#: (label, raw body, Content-Type): none of them is an acceptable request body.
BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("missing", b"", None),
    ("missing-json", b"", "application/json"),
    ("null", b"null", "application/json"),
    ("array", b"[]", "application/json"),
    ("string", b'"work order"', "application/json"),
    ("number", b"1", "application/json"),
    ("malformed", b'{"title": ', "application/json"),
    ("wrong-type", b"title=x", "application/x-www-form-urlencoded"),
    ("text", b"{}", "text/plain"),
]


def _state(rt: Any) -> dict[str, Any]:
    """Row counts of every table, and the version sum of every record table."""
    out: dict[str, Any] = {}
    with rt.engine.connect() as conn:
        for table in SYSTEM.sorted_tables:
            if table.name not in ("api_tokens", "users"):
                out[table.name] = conn.execute(select(func.count()).select_from(table)).scalar()
        for name, table in rt.tables.items():
            out[name] = tuple(conn.execute(select(func.count(), func.sum(table.c.row_version))
                                           ).one())
    return out


def _operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/api/v1/openapi.json").get_json()
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items() if isinstance(op, dict) and "requestBody" in op]


def _headers(path: str, body: bytes, content_type: str | None, token: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "If-Match": "*"}
    if content_type:
        headers["Content-Type"] = content_type
    if path.startswith("/channels/"):
        header, secret = ("X-Wechat-Signature", SECRETS["WECHAT_WEBHOOK_SECRET"]) \
            if path == "/channels/wechat" else \
            ("X-Dispatchflow-Signature", SECRETS["EMAIL_CHANNEL_SECRET"])
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers[header] = f"sha256={digest}"
    return headers


def _url(path: str, world: dict[str, Any]) -> str:
    ids = {"record_id": world["orders"][0]["id"], "offer_id": 1}
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m[1]]), path)


def _assert_refused(res: Any, what: str) -> None:
    assert 400 <= res.status_code < 500, (what, res.status_code, res.get_data(as_text=True))
    assert res.mimetype == "application/problem+json", what
    assert res.get_json()["status"] == res.status_code, what


@pytest.fixture
def signed_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("signed_channels")
def test_bad_bodies_are_refused_and_write_nothing(client, rt, world, token_for) -> None:
    token = token_for("admin")
    operations = _operations(client)
    assert len(operations) >= 30
    for path, method, _op in operations:
        url = _url(path, world)
        for label, body, content_type in BAD_BODIES:
            before = _state(rt)
            res = client.open(url, method=method.upper(), data=body,
                              headers=_headers(path, body, content_type, token))
            _assert_refused(res, f"{method} {path} {label}")
            assert _state(rt) == before, f"{method} {path} {label} wrote something"


@pytest.mark.usefixtures("signed_channels")
def test_oversized_bodies_are_413(client, rt, world, token_for) -> None:
    token = token_for("admin")
    body = b'{"title": "' + b"x" * client.application.config["MAX_CONTENT_LENGTH"] + b'"}'
    before = _state(rt)
    for path, method, op in _operations(client):
        content_type = next(iter(op["requestBody"]["content"]))  # the documented one
        if content_type == "multipart/form-data":
            content_type += "; boundary=x"
        res = client.open(_url(path, world), method=method.upper(), data=body,
                          headers=_headers(path, body, content_type, token))
        _assert_refused(res, f"{method} {path} oversized")
        assert res.status_code == 413, (method, path)
    assert _state(rt) == before


@pytest.mark.usefixtures("signed_channels")
def test_an_empty_object_is_refused_where_the_document_requires_more(client, rt, world,
                                                                     token_for) -> None:
    token = token_for("admin")
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    checked = 0
    for path, method, op in _operations(client):
        content = op["requestBody"]["content"]
        schema = content.get("application/json", {}).get("schema", {})
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
        if not schema.get("required"):
            continue
        before = _state(rt)
        res = client.open(_url(path, world), method=method.upper(), data=b"{}",
                          headers=_headers(path, b"{}", "application/json", token))
        _assert_refused(res, f"{method} {path} {{}}")
        assert _state(rt) == before
        checked += 1
    assert checked >= 7  # every create, and assign
