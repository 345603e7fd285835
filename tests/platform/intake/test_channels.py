"""Channels without HTTP: signatures, mapping with transforms, e-mail parsing, deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import App, compile_bundle
from dispatchflow.errors import ValidationError
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.intake import channels
from dispatchflow.platform.intake.channels import (
    BadMessage,
    Channel,
    ChannelNotConfigured,
    MappingRule,
    MessageTooLarge,
    SignatureInvalid,
    UnknownChannel,
    channel,
    deliver_email,
    deliver_webhook,
    html_text,
    map_payload,
    parse_email,
)
from dispatchflow.platform.intake.signatures import (
    BadKey,
    check_key,
    sign,
    signed_payload,
    verify,
)
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.store.db import audit_log, files, outbox
from dispatchflow.platform.store.versions import publish

REFERENCE = Path(__file__).resolve().parents[3] / "examples" / "field-service"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
SECRET = b"s3cret-shared-with-wechat"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def intake_bundle(root: Path) -> Path:
    """A copy of the reference bundle (its e-mail channel is signed and maps attachments)."""
    shutil.copytree(REFERENCE, root)
    return root


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    result = compile_bundle(intake_bundle(tmp_path_factory.mktemp("intake") / "bundle"))
    assert result.app is not None, result.diagnostics
    return result.app


@pytest.fixture(scope="module")
def reference_app() -> App:
    result = compile_bundle(REFERENCE)
    assert result.app is not None, result.diagnostics
    return result.app


@pytest.fixture
def rt(tmp_path: Path, app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("EMAIL_CHANNEL_SECRET", SECRET.decode())
    runtime = Runtime(Settings.from_env(home=tmp_path / "home",
                                        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                        secret_key="test"))
    publish(runtime.engine, app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def customer(rt: Runtime) -> int:
    return int(rt.records.create(SYSTEM_ACTOR, "customer",
                                 {"name": "张伟", "phone": "13800000001"})["id"])


def count(rt: Runtime, table: Any) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# ------------------------------------------------------------------ signatures


T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def now_signed(body: bytes, key: str = "") -> str:
    """The signature header for ``body`` sent now with ``key``."""
    return sign(SECRET, body, timestamp=int(time.time()), key=key)


def test_signature_covers_time_key_and_body_and_accepts_hex_in_any_case() -> None:
    body = "{\"设备编号\": \"AC-1\"}".encode()
    digest = hmac.new(SECRET, f"{T0}.k-1.".encode() + body, hashlib.sha256).hexdigest()
    assert signed_payload(T0, "k-1", body) == f"{T0}.k-1.".encode() + body
    assert sign(SECRET, body, timestamp=T0, key="k-1") == f"t={T0},v1={digest}"
    verify(SECRET, body, f"t={T0},v1={digest}", key="k-1", now=T0, tolerance=300)
    verify(SECRET, body, f" v1={digest.upper()} , t={T0} ", key="k-1", now=T0 + 300,
           tolerance=300)
    # several v1 values (a secret being rotated): one matching is enough
    verify(SECRET, body, f"t={T0},v1={'0' * 64},v1={digest},v0=x", key="k-1", now=T0,
           tolerance=300)


@pytest.mark.parametrize("header", ["", "sha256=" + "0" * 64, "0" * 64, f"t={T0}",
                                    "v1=" + "0" * 64, f"t=x,v1={'0' * 64}",
                                    f"t={T0},v1=" + "ä" * 64, f"t={T0},v1=abc"])
def test_malformed_signature_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureInvalid, match="is not of the form t=<unix time>,v1="):
        verify(SECRET, b"{}", header, key="", now=T0, tolerance=300)


@pytest.mark.parametrize("body, key, secret", [
    (b"{ }", "", SECRET), (b"{}", "other-key", SECRET), (b"{}", "", b"other")])
def test_signature_of_another_body_key_or_secret_is_refused(
        body: bytes, key: str, secret: bytes) -> None:
    header = sign(SECRET, b"{}", timestamp=T0, key="")
    with pytest.raises(SignatureInvalid, match="does not match the body"):
        verify(secret, body, header, key=key, now=T0, tolerance=300)


@pytest.mark.parametrize("offset, message", [
    (301, "timestamp is 301 s old (more than 300 s)"),
    (-301, "timestamp is 301 s in the future (more than 300 s)")])
def test_a_signature_outside_the_tolerance_is_refused(offset: int, message: str) -> None:
    header = sign(SECRET, b"{}", timestamp=T0, key="")
    with pytest.raises(SignatureInvalid) as err:
        verify(SECRET, b"{}", header, key="", now=T0 + offset, tolerance=300)
    assert err.value.message == f"the signature {message}: refused as a possible replay"


@pytest.mark.parametrize("key", ["a.b", "with space", "x" * 191, "键"])
def test_idempotency_keys_with_dots_or_other_characters_are_refused(key: str) -> None:
    with pytest.raises(BadKey, match="no dot, no space"):
        check_key(key)
    assert check_key(None) == "" and check_key("3f2b-Aa_:+/=@x") == "3f2b-Aa_:+/=@x"


def test_missing_secret_env_var_refuses_with_the_variable_name(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WECHAT_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ChannelNotConfigured) as err:
        channel(app, "wechat").secret()
    assert err.value.message == "channel secret not configured: set WECHAT_WEBHOOK_SECRET"


def test_a_channel_without_secret_env_refuses_every_message(tmp_path: Path) -> None:
    root = intake_bundle(tmp_path / "bundle")
    email = root / "channels" / "email.yaml"
    email.write_text(email.read_text("utf-8").replace(
        "secret_env: EMAIL_CHANNEL_SECRET\n", ""), "utf-8")
    unsigned = compile_bundle(root).app
    assert unsigned is not None
    with pytest.raises(ChannelNotConfigured) as err:
        channel(unsigned, "email").secret({})
    assert err.value.message == ("channel 'email' has no secret_env, so it refuses every "
                                 "message")
    assert "secret_env: EMAIL_CHANNEL_SECRET" in (err.value.hint or "")


def test_authenticate_names_the_channels_header(app: App) -> None:
    ch = channel(app, "wechat")
    env = {"WECHAT_WEBHOOK_SECRET": SECRET.decode()}
    at = datetime.fromtimestamp(T0, UTC)

    def auth(header: str | None) -> None:
        channels.authenticate(ch, b"{}", header, key="", now=at, tolerance=300, environ=env)

    with pytest.raises(SignatureInvalid, match="missing X-Wechat-Signature header"):
        auth(None)
    with pytest.raises(SignatureInvalid, match="the X-Wechat-Signature signature does not"):
        auth(sign(b"nope", b"{}", timestamp=T0))
    with pytest.raises(SignatureInvalid, match="the X-Wechat-Signature header is not of"):
        auth("sha256=" + hmac.new(SECRET, b"{}", hashlib.sha256).hexdigest())
    auth(sign(SECRET, b"{}", timestamp=T0))


# ------------------------------------------------------------------ mapping


def test_channels_are_compiled_once_per_app_version(app: App) -> None:
    ch = channel(app, "wechat")
    assert ch is channel(app, "wechat")
    assert ch.kind == "webhook" and ch.entity == "work_order"
    assert ch.signature_header == "X-Wechat-Signature" and ch.max_body_bytes == 256 * 1024
    assert channel(app, "email").signature_header == "X-Dispatchflow-Signature"


def test_unknown_channel_or_wrong_kind_lists_the_channels(app: App) -> None:
    with pytest.raises(UnknownChannel) as err:
        channel(app, "wechatt")
    assert err.value.hint == "channels: email (email), wechat (webhook)"
    with pytest.raises(UnknownChannel, match="no email channel 'wechat'"):
        channel(app, "wechat", "email")


def test_map_payload_applies_mapping_transforms_and_defaults(app: App) -> None:
    mapped = map_payload(app, "wechat", {
        "客户编号": "12", "设备编号": " ac-0012 ", "故障描述": "  客厅空调不制冷 ",
        "故障类型": "家用空调", "联系电话": 13800000001, "位置": "31.2304, 121.4737",
        "预约时间": "2026-03-03T10:00:00+08:00", "来源": "小程序", "openid": "o-1"}, NOW)
    assert mapped.errors == []
    assert mapped.payload == {
        "customer": 12, "asset_code": "AC-0012", "description": "客厅空调不制冷",
        "category": "aircon", "contact_phone": "13800000001",
        "location": {"lat": 31.2304, "lng": 121.4737},
        "scheduled_at": "2026-03-03T10:00:00+08:00",
        "channel": "wechat", "title": "微信报修"}
    assert mapped.skipped == ["来源", "openid"]


def test_transforms_see_text_and_defaults_fill_what_is_missing(app: App) -> None:
    mapped = map_payload(app, "wechat", {"故障类型": "中央空调不制冷", "地址": None}, NOW)
    assert mapped.payload == {"category": "hvac", "channel": "wechat", "title": "微信报修"}
    assert map_payload(app, "wechat", {}, NOW).payload["category"] == "appliance"


def test_a_failing_transform_is_a_field_error(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(value: Any, now: datetime) -> Any:
        raise ZeroDivisionError("no")

    broken = Channel("wechat", "webhook", "work_order", "channels/wechat.yaml", None,
                     "X-Sig", None, (MappingRule("设备编号", "asset_code", boom),))
    monkeypatch.setattr(channels, "channel", lambda *_a, **_k: broken)
    mapped = map_payload(app, "wechat", {"设备编号": "x"}, NOW)
    assert [(e.field, e.code, e.message) for e in mapped.errors] == [
        ("asset_code", "transform", "“设备编号”的值无效。")]
    assert mapped.payload == {}


# ------------------------------------------------------------------ e-mail


def make_email(body: str, *, subject: str = "空调漏水", html: str | None = None,
               attachments: list[tuple[str, str, bytes]] = ()) -> bytes:
    msg = EmailMessage()
    msg["From"] = "张伟 <zhang.wei@example.com>"
    msg["To"] = "service@example.com"
    msg["Subject"] = subject
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return msg.as_bytes()


def test_parse_email_reads_subject_body_sender_key_lines_and_attachments(app: App) -> None:
    raw = make_email("客户编号: 7\n位置：31.2,121.5\n备注: 不在映射里\n\n空调外机一直滴水。\n",
                     attachments=[("外机.png", "image/png", PNG)])
    external, attachments = parse_email(raw, app, "email")
    assert external == {"subject": "空调漏水", "客户编号": "7", "位置": "31.2,121.5",
                        "body": "备注: 不在映射里\n\n空调外机一直滴水。",
                        "from": "zhang.wei@example.com"}
    assert [(a.filename, a.content_type, a.data) for a in attachments] == [
        ("外机.png", "image/png", PNG)]


def test_parse_email_without_text_part_uses_the_html_without_tags(app: App) -> None:
    msg = EmailMessage()
    msg["Subject"] = "漏水"  # sent RFC 2047-encoded
    msg.set_content("<html><head><style>p{color:red}</style></head><body><p>卫生间"
                    "<b>漏水</b>&amp;跳闸</p><script>alert(1)</script><div>设备编号: ac-7"
                    "</div></body></html>", subtype="html")
    external, attachments = parse_email(msg.as_bytes(), app, "email")
    assert external == {"subject": "漏水", "设备编号": "ac-7", "body": "卫生间漏水&跳闸"}
    assert attachments == []


def test_html_text_drops_tags_scripts_and_keeps_block_breaks() -> None:
    assert html_text("<p>a &lt;b&gt;</p><br>c<script>x()</script>  d") == "a <b>\nc d"


def test_parse_email_refuses_garbage_and_too_much_text(app: App) -> None:
    with pytest.raises(BadMessage, match="not an RFC 822 message"):
        parse_email(b"\x00\x01 just bytes", app, "email")
    with pytest.raises(MessageTooLarge, match="larger than 512 KB"):
        parse_email(make_email("长" * 200_000), app, "email")


# ------------------------------------------------------------------ deliveries


def test_deliver_webhook_creates_the_record_as_the_channel(rt: Runtime, customer: int) -> None:
    body = json.dumps({"客户编号": customer, "设备编号": "ac-1", "故障描述": "热水器不出热水",
                       "故障类型": "热水器", "位置": {"lat": 31.2, "lng": 121.5}, "x": 1},
                      ensure_ascii=False).encode()
    delivery = deliver_webhook(rt, "wechat", body, now_signed(body))
    assert delivery.skipped == ["x"]
    stored = rt.records.get(SYSTEM_ACTOR, "work_order", delivery.record["id"])
    assert (stored["asset_code"], stored["category"], stored["channel"], stored["title"]) == \
        ("AC-1", "water_heater", "wechat", "微信报修")
    with rt.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(audit_log.c.entity == "work_order")
                             .where(audit_log.c.action == "create")).mappings().one()
    assert (audit["actor"], audit["channel"]) == ("channel:wechat", "wechat")


@pytest.mark.parametrize("body, message", [
    (b"[1, 2]", "the body must be a JSON object"),
    (b"{not json", "the body is not valid JSON"),
    (b"\xff\xfe{}", "the body is not valid JSON"),
])
def test_deliver_webhook_refuses_non_objects(rt: Runtime, body: bytes, message: str) -> None:
    with pytest.raises(BadMessage) as err:
        deliver_webhook(rt, "wechat", body, now_signed(body))
    assert err.value.message == message


def test_invalid_webhook_raises_field_errors_and_writes_nothing(rt: Runtime) -> None:
    body = '{"联系电话": "12345", "客户编号": 99}'.encode()
    with pytest.raises(ValidationError) as err:
        deliver_webhook(rt, "wechat", body, now_signed(body))
    fields = {e.field for e in err.value.errors}
    assert {"contact_phone", "location"} <= fields
    assert count(rt, rt.tables["work_order"]) == 0 and count(rt, outbox) == 0


def test_deliver_email_stores_accepted_attachments_in_the_mapped_field(
        rt: Runtime, customer: int) -> None:
    raw = make_email(f"客户编号: {customer}\n位置: 31.2,121.5\n设备编号: ac-9\n\n外机漏水。",
                     subject="  空调漏水 ", attachments=[("a.png", "image/png", PNG),
                                                     ("报价.pdf", "application/pdf", b"%PDF-1")])
    delivery = deliver_email(rt, "email", raw, now_signed(raw))
    assert delivery.skipped == ["from", "attachment 报价.pdf: application/pdf not accepted "
                                "by photos"]
    stored = rt.records.get(SYSTEM_ACTOR, "work_order", delivery.record["id"])
    assert (stored["title"], stored["description"], stored["asset_code"], stored["channel"]) == \
        ("空调漏水", "外机漏水。", "AC-9", "email")
    assert stored["location"] == {"lat": 31.2, "lng": 121.5}
    assert len(stored["photos"]) == 1
    with rt.engine.connect() as conn:
        kept = conn.execute(select(files)).mappings().one()
    assert (kept["id"], kept["filename"], kept["data"]) == (stored["photos"][0], "a.png", PNG)


def test_invalid_email_removes_its_attachments_again(rt: Runtime) -> None:
    raw = make_email("没有客户编号和位置", attachments=[("a.png", "image/png", PNG)])
    with pytest.raises(ValidationError) as err:
        deliver_email(rt, "email", raw, now_signed(raw))
    assert {"customer", "location"} <= {e.field for e in err.value.errors}
    assert count(rt, files) == 0 and count(rt, rt.tables["work_order"]) == 0


def test_email_larger_than_the_upload_limit_is_refused_before_parsing(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    monkeypatch.setattr(rt, "settings", replace(rt.settings, max_upload_mb=0.001))
    raw = make_email("x" * 2000)
    with pytest.raises(MessageTooLarge, match="larger than 0.001 MB"):
        deliver_email(rt, "email", raw, now_signed(raw))


# ------------------------------------------------------------------ the documented scheme


def test_the_worked_example_in_the_operations_guide_is_what_sign_computes() -> None:
    docs = (REFERENCE.parents[1] / "docs" / "operations.md").read_text("utf-8")
    block = docs.split("<!-- signature-example -->\n```\n", 1)[1].split("```", 1)[0]
    # label in the first 17 columns, the value after it
    rows = {line[:17].strip(): line[17:] for line in block.splitlines()}
    secret, t, key = rows["secret"], int(rows["t"]), rows["Idempotency-Key"]
    body = rows["body"].encode("utf-8")
    assert len(body) == 56 and "The body is the 56 UTF-8 bytes shown" in docs
    assert rows["signed payload"].encode("utf-8") == signed_payload(t, key, body)
    header = rows["header"]
    assert header == "X-Wechat-Signature: " + sign(secret.encode(), body, timestamp=t, key=key)
    digest = header.rsplit("v1=", 1)[1]
    assert f"# SHA2-256(stdin)= {digest}" in docs  # the shell example's output


# ------------------------------------------------------------------ repeats and the window


def test_the_same_bytes_are_a_repeat_within_the_window_only(
        rt: Runtime, customer: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    start = datetime.now(UTC)
    monkeypatch.setattr(rt, "clock", lambda: start)
    body = json.dumps({"客户编号": customer, "位置": "31.2,121.5"}).encode()

    def send(key: str) -> channels.Delivery:
        at = rt.clock().timestamp()
        return deliver_webhook(rt, "wechat", body, sign(SECRET, body, timestamp=int(at),
                                                         key=key), key)

    first = send("k-1")
    assert not first.duplicate
    again = send("k-2")  # same bytes, new key, within the window: the same record
    assert again.duplicate and again.record["id"] == first.record["id"]
    monkeypatch.setattr(rt, "clock", lambda: start + timedelta(seconds=301))
    later = send("k-3")  # the same text five minutes later is a new message
    assert not later.duplicate and later.record["id"] != first.record["id"]
    assert send("k-1").record["id"] == first.record["id"]  # a key is remembered for ever
    assert count(rt, rt.tables["work_order"]) == 2
