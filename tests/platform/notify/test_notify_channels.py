"""Tests for dispatchflow.platform.notify.channels against real servers: e-mail to an
aiosmtpd SMTP server, webhooks to an HTTP server on 127.0.0.1 (signature, retries)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
from datetime import UTC, timedelta
from typing import Any

import pytest
from notify_world import MONDAY_10, SmtpSink, WebhookServer, World, free_port

from dispatchflow.platform.notify import deliver
from dispatchflow.platform.notify.channels import (
    TRANSPORTS,
    EmailTransport,
    InboxTransport,
    WebhookTransport,
    build_transport,
    verify,
)

SECRET = "s3cret-签名"


def smtp_env(port: int, **extra: str) -> dict[str, str]:
    return {"DISPATCHFLOW_SMTP_HOST": "127.0.0.1", "DISPATCHFLOW_SMTP_PORT": str(port),
            "DISPATCHFLOW_SMTP_FROM": "dispatch@example.com", **extra}


def by_channel(world: World, ids: list[int], channel: str) -> int:
    return next(i for i in ids if world.rows(id=i)[0]["channel"] == channel)


# ------------------------------------------------------------------ e-mail


def test_email_arrives_with_utf8_subject_and_text_and_html_parts(
        world: World, smtp_server: tuple[int, SmtpSink]) -> None:
    port, sink = smtp_server
    order = world.new_order("wo_xss", title="空调<script>alert(1)</script>")
    email_id = by_channel(world, world.plan("escalation", order), "email")
    transport = EmailTransport(world.rt.engine, smtp_env(port))
    assert deliver(world.rt.engine, email_id, MONDAY_10, {"email": transport}) == "sent"
    [envelope] = sink.envelopes
    assert envelope.mail_from == "dispatch@example.com"
    assert envelope.rcpt_tos == ["sup.pd@example.com"]
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert mail["Subject"] == "【派单升级】空调<script>alert(1)</script>"
    assert mail["To"] == "浦东主管 <sup.pd@example.com>"
    assert mail["Message-ID"] == f"<dispatchflow.{email_id}@example.com>"
    assert mail["X-Dispatchflow-Delivery"] == str(email_id)
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "工单“空调<script>alert(1)</script>”" in text
    assert "多次推送无人接单，已升级给您，请手动指派技师。" in text
    assert "<script>" not in html and "空调&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<html lang="zh">' in html
    row = world.rows(id=email_id)[0]
    assert row["status"] == "sent" and row["attempts"] == 1


def test_email_settings_come_from_the_environment(
        world: World, smtp_server: tuple[int, SmtpSink],
        monkeypatch: pytest.MonkeyPatch) -> None:
    port, sink = smtp_server
    for key, value in smtp_env(port).items():
        monkeypatch.setenv(key, value)
    email_id = by_channel(world, world.plan("escalation", world.order()), "email")
    assert deliver(world.rt.engine, email_id, MONDAY_10) == "sent"
    assert len(sink.envelopes) == 1


def test_an_unreachable_smtp_server_is_retried(world: World) -> None:
    email_id = by_channel(world, world.plan("escalation", world.order()), "email")
    transport = EmailTransport(world.rt.engine, smtp_env(free_port()))
    assert deliver(world.rt.engine, email_id, MONDAY_10, {"email": transport}) == "pending"
    row = world.rows(id=email_id)[0]
    assert row["last_error"].startswith("cannot reach the SMTP server 127.0.0.1:")


def test_email_without_configuration_is_held_as_unconfigured_with_a_hint(world: World) -> None:
    email_id = by_channel(world, world.plan("escalation", world.order()), "email")
    transport = EmailTransport(world.rt.engine, {})
    assert deliver(world.rt.engine, email_id, MONDAY_10, {"email": transport}) == \
        "unconfigured"
    row = world.rows(id=email_id)[0]
    assert row["last_error"] == (
        "e-mail is not configured: DISPATCHFLOW_SMTP_HOST is not set (hint: set "
        "DISPATCHFLOW_SMTP_HOST (and DISPATCHFLOW_SMTP_FROM) for the workers)")
    assert row["attempts"] == 0 and row["next_attempt_at"] is None


# ------------------------------------------------------------------ webhook


def webhook(world: World, server: WebhookServer, **env: str) -> WebhookTransport:
    """The transport posting to the test server (on loopback: allowed explicitly)."""
    return WebhookTransport(world.rt.engine, {
        "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE": server.url,
        "DISPATCHFLOW_WEBHOOK_SECRET": SECRET, "DISPATCHFLOW_WEBHOOK_ALLOW": "127.0.0.1",
        **env})


def test_webhook_posts_signed_json(world: World, webhook_server: WebhookServer) -> None:
    hook_id = by_channel(world, world.plan("customer_status_update", world.order(),
                                           cause="event 5"), "webhook")
    at = MONDAY_10 + timedelta(seconds=7)
    assert deliver(world.rt.engine, hook_id, at,
                   {"webhook": webhook(world, webhook_server)}) == "sent"
    [(headers, body)] = webhook_server.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-dispatchflow-signature"] == expected
    assert verify(SECRET, body, headers["x-dispatchflow-signature"])
    assert not verify("other", body, headers["x-dispatchflow-signature"])
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-dispatchflow-timestamp"] == str(int(at.timestamp()))
    assert headers["x-dispatchflow-delivery"] == str(hook_id)
    document = json.loads(body.decode("utf-8"))
    assert document["timestamp"] == int(at.timestamp())
    assert {k: document[k] for k in ("notification", "entity", "record_id", "severity",
                                     "subject", "cause", "recipients")} == {
        "notification": "customer_status_update", "entity": "work_order",
        "record_id": world.ids["wo_pd"], "severity": "info",
        "subject": "您的工单进度更新：空调不制冷", "cause": "event 5",
        "recipients": [{"user_id": "cust_pd", "name": "张伟", "locale": "zh"}]}
    assert "服务技师：王师傅。" in document["body"]
    attempt = world.rows(id=hook_id)[0]
    assert attempt["status"] == "sent"


def test_a_500_is_retried_with_backoff_and_a_later_success_is_sent(
        world: World, webhook_server: WebhookServer) -> None:
    hook_id = by_channel(world, world.plan("customer_status_update", world.order()), "webhook")
    transport = webhook(world, webhook_server)
    webhook_server.statuses.extend([500])
    assert deliver(world.rt.engine, hook_id, MONDAY_10, {"webhook": transport}) == "pending"
    row = world.rows(id=hook_id)[0]
    retry_at = row["next_attempt_at"]
    retry_at = retry_at if retry_at.tzinfo else retry_at.replace(tzinfo=UTC)
    assert retry_at == MONDAY_10 + timedelta(seconds=30)
    assert row["last_error"] == "the webhook answered 500: boom"
    assert deliver(world.rt.engine, hook_id, retry_at - timedelta(seconds=1),
                   {"webhook": transport}) == "pending"
    assert len(webhook_server.requests) == 1
    assert deliver(world.rt.engine, hook_id, retry_at, {"webhook": transport}) == "sent"
    assert len(webhook_server.requests) == 2
    first, second = (json.loads(b) for _, b in webhook_server.requests)
    assert first["delivery_id"] == second["delivery_id"] == hook_id
    assert world.rows(id=hook_id)[0]["attempts"] == 2


@pytest.mark.parametrize("status, outcome", [(404, "failed"), (429, "pending"),
                                             (503, "pending")])
def test_which_webhook_answers_are_retried(world: World, webhook_server: WebhookServer,
                                       status: int, outcome: str) -> None:
    hook_id = by_channel(world, world.plan("customer_status_update", world.order()), "webhook")
    webhook_server.statuses.append(status)
    assert deliver(world.rt.engine, hook_id, MONDAY_10,
                   {"webhook": webhook(world, webhook_server)}) == outcome


@pytest.mark.parametrize("env, message, status", [
    ({"DISPATCHFLOW_WEBHOOK_SECRET": ""}, "webhooks are not signed: "
     "DISPATCHFLOW_WEBHOOK_SECRET is not set", "unconfigured"),
    ({"DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE": ""}, "the webhook URL variable "
     "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE is not set", "unconfigured"),
    ({"DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE": "file:///etc/passwd"}, "the webhook URL in "
     "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE must start with https:// or http://",
     "unconfigured"),
    ({"DISPATCHFLOW_WEBHOOK_ALLOW": "10.0.0.0/8,not a host"}, "DISPATCHFLOW_WEBHOOK_ALLOW: "
     "'not a host' is neither a network", "unconfigured"),
    ({"DISPATCHFLOW_WEBHOOK_ALLOW": ""}, "webhook destination refused: 127.0.0.1 resolves "
     "to 127.0.0.1 (loopback)", "failed"),
])
def test_webhook_configuration_errors_send_nothing(
        world: World, webhook_server: WebhookServer, env: dict[str, str],
        message: str, status: str) -> None:
    hook_id = by_channel(world, world.plan("customer_status_update", world.order()), "webhook")
    assert deliver(world.rt.engine, hook_id, MONDAY_10,
                   {"webhook": webhook(world, webhook_server, **env)}) == status
    assert world.rows(id=hook_id)[0]["last_error"].startswith(message)
    assert webhook_server.requests == []


# ------------------------------------------------------------------ registry and inbox


def test_the_registry_builds_every_channel_of_the_schema(world: World) -> None:
    assert set(TRANSPORTS) == {"email", "webhook", "inbox"}
    for name in TRANSPORTS:
        assert build_transport(name, world.rt.engine, {}).name == name


def test_inbox_delivery_is_idempotent_per_delivery(world: World) -> None:
    inbox_id = by_channel(world, world.plan("escalation", world.order()), "inbox")
    transport: Any = InboxTransport(world.rt.engine)
    assert deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": transport}) == "sent"
    from dispatchflow.platform.notify import inbox

    with world.rt.engine.connect() as conn:
        [message] = inbox(conn, "sup_pd")
    assert message["delivery_id"] == inbox_id
    from dispatchflow.platform.notify.channels import Message

    again = Message(delivery_id=inbox_id, notification="escalation", label="x",
                    entity="work_order", record_id=1, channel="inbox", recipient="sup_pd",
                    recipient_name="", user_id="sup_pd", address=None, locale="zh",
                    subject="dup", text="", html="", severity="info", cause=None,
                    created_at=MONDAY_10)
    assert transport.send(again, MONDAY_10).detail == "already in the inbox"
    with world.rt.engine.connect() as conn:
        assert len(inbox(conn, "sup_pd")) == 1
