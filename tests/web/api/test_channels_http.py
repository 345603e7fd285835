"""``/channels``: signed webhooks and e-mails through the Flask test client."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from reference_runtime import make_runtime
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.intake.signatures import sign
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.files import load_file
from dispatchflow.platform.store.db import audit_log, files, outbox
from dispatchflow.web.api.channels import bp as channels_bp
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
SECRET = "wechat-shared-secret"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 128
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def intake_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    """A copy of the reference bundle (its e-mail channel is signed and maps attachments)."""
    root = tmp_path_factory.mktemp("intake") / "bundle"
    shutil.copytree(REFERENCE, root)
    result = compile_bundle(root)
    assert result.app is not None, result.diagnostics
    return result.app


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("EMAIL_CHANNEL_SECRET", SECRET)


@pytest.fixture
def rt(tmp_path: Path, intake_app: App, secrets_set: None) -> Iterator[Runtime]:
    runtime = make_runtime(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home", intake_app)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def any_rt(database_url: str, tmp_path: Path, intake_app: App,
           secrets_set: None) -> Iterator[Runtime]:
    runtime = make_runtime(database_url, tmp_path / "home", intake_app)
    yield runtime
    runtime.engine.dispose()


def client_for(rt: Runtime) -> Any:
    app = create_app(runtime=rt, TESTING=True)
    if "channels" not in app.blueprints:  # until create_app registers it
        from dispatchflow.web.app import csrf

        csrf.exempt(channels_bp)
        app.register_blueprint(channels_bp)
    return app.test_client()


@pytest.fixture
def client(rt: Runtime) -> Any:
    return client_for(rt)


def customer(rt: Runtime) -> int:
    return int(rt.records.create(SYSTEM_ACTOR, "customer",
                                 {"name": "李娜", "phone": "13800000002"})["id"])


def count(rt: Runtime, table: Any) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def signed(body: bytes, header: str = "X-Wechat-Signature", secret: str = SECRET,
           at: float | None = None, **extra: str) -> dict[str, str]:
    """Headers of a request signed at ``at`` (default now); ``extra`` may hold an
    Idempotency-Key, which the signature covers."""
    stamp = int(time.time() if at is None else at)
    value = sign(secret.encode(), body, timestamp=stamp, key=extra.get("Idempotency-Key", ""))
    return {header: value, **extra}


def wechat_body(cid: int, **changes: Any) -> bytes:
    data = {"客户编号": cid, "设备编号": " ac-0012 ", "故障描述": "客厅空调不制冷",
            "故障类型": "空调", "联系电话": "13800000002", "地址": " 浦东新区张江路88号 ",
            "位置": "31.2036,121.5903", "预约时间": "2026-03-03T10:00:00+08:00",
            "openid": "o-123"}
    data.update(changes)
    return json.dumps(data, ensure_ascii=False).encode()


def post_webhook(client: Any, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/channels/wechat", data=body,
                       headers={"Content-Type": "application/json", **headers})


# ------------------------------------------------------------------ webhook


def test_signed_webhook_creates_the_mapped_record(any_rt: Runtime) -> None:
    client = client_for(any_rt)
    body = wechat_body(customer(any_rt))
    res = post_webhook(client, body, signed(body))
    assert res.status_code == 201, res.get_json()
    reply = res.get_json()
    assert reply["skipped"] == ["openid"]
    stored = any_rt.records.get(SYSTEM_ACTOR, "work_order", reply["id"])
    assert stored["asset_code"] == "AC-0012"  # 设备编号 -> asset_code, upper(trim(value))
    assert (stored["category"], stored["channel"], stored["title"]) == \
        ("aircon", "wechat", "微信报修")
    assert (stored["address"], stored["description"]) == ("浦东新区张江路88号", "客厅空调不制冷")
    assert stored["location"] == {"lat": 31.2036, "lng": 121.5903}
    assert stored["scheduled_at"].startswith("2026-03-03T")
    with any_rt.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(audit_log.c.entity == "work_order")
                             .where(audit_log.c.action == "create")).mappings().one()
        event = conn.execute(select(outbox).where(outbox.c.entity == "work_order")
                             .order_by(outbox.c.id)).mappings().first()
    assert (audit["actor"], audit["channel"]) == ("channel:wechat", "wechat")
    assert event["event"] == "created" and event["record_id"] == reply["id"]


@pytest.mark.parametrize("headers, detail", [
    ({}, "missing X-Wechat-Signature header"),
    ({"X-Wechat-Signature": f"t={int(time.time())},v1=" + "0" * 64},
     "the X-Wechat-Signature signature does not match the body"),
    ({"X-Wechat-Signature": "sha256=" + "0" * 64},
     "the X-Wechat-Signature header is not of the form t=<unix time>,v1=<hex HMAC-SHA256>"),
    ({"X-Dispatchflow-Signature": "wrong header"}, "missing X-Wechat-Signature header"),
])
def test_missing_or_wrong_signature_is_401_and_writes_nothing(
        client: Any, rt: Runtime, headers: dict[str, str], detail: str) -> None:
    body = wechat_body(customer(rt))
    events = count(rt, outbox)
    res = post_webhook(client, body, headers)
    assert res.status_code == 401 and res.mimetype == PROBLEM
    assert res.get_json()["detail"] == detail
    assert count(rt, rt.tables["work_order"]) == 0 and count(rt, outbox) == events


def test_signature_of_other_bytes_is_401(client: Any, rt: Runtime) -> None:
    body = wechat_body(customer(rt))
    res = post_webhook(client, body, signed(body + b" "))
    assert res.status_code == 401
    assert count(rt, rt.tables["work_order"]) == 0


def test_oversized_body_is_413(client: Any, rt: Runtime) -> None:
    body = wechat_body(customer(rt), 故障描述="很长" * 50_000)  # > 256 KB (max_body_kb)
    res = post_webhook(client, body, signed(body))
    assert res.status_code == 413 and res.mimetype == PROBLEM
    assert res.get_json()["detail"] == "the body is larger than 256 KB"
    assert count(rt, rt.tables["work_order"]) == 0


def test_invalid_mapped_value_is_422_with_field_errors(client: Any, rt: Runtime) -> None:
    body = wechat_body(customer(rt), 联系电话="12345", 位置="在小区门口")
    events = count(rt, outbox)
    res = post_webhook(client, body, signed(body))
    assert res.status_code == 422 and res.mimetype == PROBLEM
    problem = res.get_json()
    fields = {e["field"] for e in problem["errors"]}
    assert {"contact_phone", "location"} <= fields
    assert all(e["message"] for e in problem["errors"])
    assert count(rt, rt.tables["work_order"]) == 0 and count(rt, outbox) == events


@pytest.mark.parametrize("body, detail", [
    (b"[]", "the body must be a JSON object"),
    ("不是 JSON".encode(), "the body is not valid JSON"),
])
def test_non_object_body_is_400(client: Any, body: bytes, detail: str) -> None:
    res = post_webhook(client, body, signed(body))
    assert res.status_code == 400 and res.get_json()["detail"] == detail


def test_unknown_channel_or_wrong_kind_is_404(client: Any) -> None:
    body = b"{}"
    res = client.post("/channels/sms", data=body, headers=signed(body))
    assert res.status_code == 404 and res.mimetype == PROBLEM
    assert res.get_json()["detail"] == "no webhook channel 'sms'"
    assert client.post("/channels/email", data=body, headers=signed(body)).status_code == 404
    assert client.post("/channels/wechat/email", data=body,
                       headers=signed(body)).status_code == 404


def test_unconfigured_secret_refuses_every_request_with_503(
        client: Any, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WECHAT_WEBHOOK_SECRET")
    body = wechat_body(customer(rt))
    res = post_webhook(client, body, signed(body))
    assert res.status_code == 503 and res.mimetype == PROBLEM
    assert res.get_json()["detail"] == "channel secret not configured: set WECHAT_WEBHOOK_SECRET"
    assert count(rt, rt.tables["work_order"]) == 0


def test_channels_need_no_csrf_token(rt: Runtime) -> None:
    app = create_app(runtime=rt, TESTING=True, WTF_CSRF_ENABLED=True)
    if "channels" not in app.blueprints:
        from dispatchflow.web.app import csrf

        csrf.exempt(channels_bp)
        app.register_blueprint(channels_bp)
    body = wechat_body(customer(rt))
    assert post_webhook(app.test_client(), body, signed(body)).status_code == 201


# ------------------------------------------------------------------ e-mail


def make_email(cid: int | None, attachments: list[tuple[str, str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "李娜 <li.na@example.com>"
    msg["To"] = "service@example.com"
    msg["Subject"] = "热水器不出热水"
    lines = ([f"客户编号: {cid}"] if cid is not None else []) + [
        "位置: 31.2036,121.5903", "联系电话：13800000002", "", "打火后马上熄灭，照片见附件。"]
    msg.set_content("\n".join(lines))
    for filename, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return msg.as_bytes()


def post_email(client: Any, raw: bytes, headers: dict[str, str],
               content_type: str = "message/rfc822") -> Any:
    return client.post("/channels/email/email", data=raw,
                       headers={"Content-Type": content_type, **headers})


def test_email_with_an_attachment_creates_the_record_and_stores_the_file(
        client: Any, rt: Runtime) -> None:
    raw = make_email(customer(rt), [("热水器.png", "image/png", PNG)])
    res = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"))
    assert res.status_code == 201, res.get_json()
    assert res.get_json()["skipped"] == ["from"]
    stored = rt.records.get(SYSTEM_ACTOR, "work_order", res.get_json()["id"])
    assert (stored["title"], stored["description"], stored["channel"]) == \
        ("热水器不出热水", "打火后马上熄灭，照片见附件。", "email")
    assert stored["contact_phone"] == "13800000002"
    [file_id] = stored["photos"]
    meta, data = load_file(rt.engine, file_id)
    assert (meta.filename, meta.content_type, data) == ("热水器.png", "image/png", PNG)


def test_invalid_email_is_422_and_keeps_no_file(client: Any, rt: Runtime) -> None:
    raw = make_email(None, [("a.png", "image/png", PNG)])
    res = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"))
    assert res.status_code == 422
    assert "customer" in {e["field"] for e in res.get_json()["errors"]}
    assert count(rt, files) == 0 and count(rt, rt.tables["work_order"]) == 0


def test_email_needs_a_signature_and_a_message_content_type(client: Any, rt: Runtime) -> None:
    raw = make_email(customer(rt), [])
    assert post_email(client, raw, {}).status_code == 401
    assert post_email(client, raw, signed(raw, "X-Wechat-Signature")).status_code == 401
    res = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"), "text/plain")
    assert res.status_code == 415 and res.mimetype == PROBLEM
    res = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"),
                     "application/octet-stream")
    assert res.status_code == 201


def test_no_published_version_is_a_503_problem(tmp_path: Path, secrets_set: None) -> None:
    runtime = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="test",
                                        database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        res = post_webhook(client_for(runtime), b"{}", signed(b"{}"))
        assert res.status_code == 503 and res.mimetype == PROBLEM
        assert res.get_json()["detail"] == "no app version is published"
    finally:
        runtime.engine.dispose()


# ------------------------------------------------------------------ repeated deliveries


def test_a_repeated_webhook_delivery_stores_nothing_new(any_rt: Runtime) -> None:
    client = client_for(any_rt)
    cid = customer(any_rt)
    body = wechat_body(cid)
    first = post_webhook(client, body, signed(body))
    again = post_webhook(client, body, signed(body))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["duplicate"]
    assert count(any_rt, any_rt.tables["work_order"]) == 1
    # The sender's Idempotency-Key names the message when the body differs (a retry
    # with a fresh timestamp, say); a new key is a new message.
    body2 = wechat_body(cid, 故障描述="又不制冷了")
    res = post_webhook(client, body2, signed(body2, **{"Idempotency-Key": "msg-7"}))
    retry = wechat_body(cid, 故障描述="又不制冷了", openid="o-456")
    res2 = post_webhook(client, retry, signed(retry, **{"Idempotency-Key": "msg-7"}))
    assert (res.status_code, res2.status_code) == (201, 200)
    assert res2.get_json()["id"] == res.get_json()["id"]
    assert count(any_rt, any_rt.tables["work_order"]) == 2


def test_a_repeated_email_keeps_one_record_and_one_file(client: Any, rt: Runtime) -> None:
    raw = make_email(customer(rt), [("热水器.png", "image/png", PNG)])
    first = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"))
    again = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(rt, files) == 1 and count(rt, rt.tables["work_order"]) == 1


# ------------------------------------------------------------------ signed time and key


def test_an_email_signed_too_long_ago_is_401_and_stores_nothing(client: Any, rt: Runtime) -> None:
    raw = make_email(customer(rt), [("热水器.png", "image/png", PNG)])
    res = post_email(client, raw, signed(raw, "X-Dispatchflow-Signature", at=time.time() - 600))
    assert res.status_code == 401 and res.mimetype == PROBLEM
    assert "refused as a possible replay" in res.get_json()["detail"]
    assert count(rt, files) == 0 and count(rt, rt.tables["work_order"]) == 0


def test_an_idempotency_key_with_a_dot_is_400(client: Any, rt: Runtime) -> None:
    body = wechat_body(customer(rt))
    res = post_webhook(client, body, signed(body, **{"Idempotency-Key": "msg.7"}))
    assert res.status_code == 400 and res.mimetype == PROBLEM
    assert res.get_json()["detail"].startswith("the Idempotency-Key header must be 1-190 "
                                               "characters")
    assert count(rt, rt.tables["work_order"]) == 0
