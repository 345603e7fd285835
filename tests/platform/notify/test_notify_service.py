"""Tests for dispatchflow.platform.notify.service (with .recipients and .digest):
planning, recipients, quiet hours, dedupe, digests, delivery, retries and inboxes,
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from notify_world import MONDAY_10, SHANGHAI, CountingTransport, World
from sqlalchemy import select, update

from dispatchflow.dsl.compiler import App
from dispatchflow.platform.notify import (
    DeliveryError,
    NotificationError,
    acknowledge,
    deliver,
    deliveries_for,
    due,
    inbox,
    mark_read,
    notifications_on,
    unread_count,
)
from dispatchflow.platform.store.db import attempts, notifications

N = notifications


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def test_notifications_on_finds_the_event(notify_app: App) -> None:
    assert notifications_on(notify_app, "work_order", "escalated") == ["escalation"]
    assert notifications_on(notify_app, "work_order", "work_order.sla_warning") == \
        ["sla_warning"]
    assert notifications_on(notify_app, "work_order", "updated") == ["urgent_alert"]
    assert notifications_on(notify_app, "technician", "escalated") == []


# ------------------------------------------------------------------ recipients


def test_role_recipients_are_limited_by_the_row_filter(world: World) -> None:
    ids = world.plan("escalation", world.order("wo_pd"))
    rows = world.rows(notification="escalation")
    assert [(r["channel"], r["recipient"], r["address"], r["status"]) for r in rows] == [
        ("inbox", "sup_pd", None, "pending"),
        ("email", "sup_pd", "sup.pd@example.com", "pending")]
    assert ids == [r["id"] for r in rows]
    assert rows[0]["subject"] == "【派单升级】空调不制冷"
    assert rows[0]["cause"] == "test" and rows[0]["severity"] == "critical"
    world.plan("escalation", world.order("wo_ja"))
    assert {r["recipient"] for r in world.rows(notification="escalation",
                                               record_id=world.ids["wo_ja"])} == {"sup_ja"}


def test_field_recipient_is_the_linked_user_and_language_follows_the_user(
        world: World) -> None:
    world.plan("sla_warning", world.order())
    rows = world.rows(notification="sla_warning")
    got = {(r["channel"], r["recipient"]): (r["status"], r["locale"], r["subject"])
           for r in rows}
    assert got == {
        ("inbox", "disp_pd"): ("held", "en", "[SLA at risk] 空调不制冷"),
        ("inbox", "tech1"): ("held", "zh", "【即将超时】空调不制冷"),
        ("email", "tech1"): ("held", "zh", "【即将超时】空调不制冷"),
        ("email", "disp_pd"): ("suppressed", "en", "[SLA at risk] 空调不制冷"),
    }
    suppressed = world.rows(status="suppressed")[0]
    assert suppressed["last_error"] == \
        "user 'disp_pd' has no e-mail address (user attribute 'email')"


def test_customer_recipient_and_one_webhook_per_firing(world: World) -> None:
    world.plan("customer_status_update", world.order())
    rows = world.rows(notification="customer_status_update")
    assert [(r["channel"], r["recipient"], r["address"]) for r in rows] == [
        ("inbox", "cust_pd", None),
        ("webhook", "webhook:DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE", "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE")]
    assert rows[1]["payload"]["recipients"] == [
        {"user_id": "cust_pd", "name": "张伟", "locale": "zh"}]


def test_a_field_holding_an_address_is_mailed_and_explicit_users_are_found(
        world: World) -> None:
    order = world.new_order("wo_mail", contact_email="li.na@example.com")
    world.plan("assignee_note", order)
    assert [(r["channel"], r["recipient"], r["address"]) for r in
            world.rows(notification="assignee_note")] == [
        ("inbox", "sup_pd", None),
        ("email", "sup_pd", "sup.pd@example.com"),
        ("email", "li.na@example.com", "li.na@example.com")]


def test_records_with_expanded_references_plan_the_same(world: World) -> None:
    order = world.order()
    expanded = {**order, "customer": world.record("customer", "cust_pd"),
                "assignee": world.record("technician", "tech1"),
                "region": world.record("region", "pd")}
    world.plan("sla_warning", expanded)
    world.plan("customer_status_update", expanded)
    assert {(r["notification"], r["channel"], r["recipient"]) for r in world.rows()} == {
        ("sla_warning", "inbox", "disp_pd"), ("sla_warning", "inbox", "tech1"),
        ("sla_warning", "email", "tech1"), ("sla_warning", "email", "disp_pd"),
        ("customer_status_update", "inbox", "cust_pd"),
        ("customer_status_update", "webhook", "webhook:DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE")}
    [status_update] = world.rows(notification="customer_status_update", channel="inbox")
    assert "服务技师：王师傅。" in status_update["body_text"]


def test_a_false_when_plans_nothing(world: World) -> None:
    assert world.plan("urgent_alert", world.order()) == []
    assert world.rows() == []
    assert len(world.plan("urgent_alert", {**world.order(), "urgent": True})) == 1


def test_unknown_notification_is_an_error(world: World) -> None:
    with pytest.raises(NotificationError, match="no notification 'nope'"):
        world.plan("nope", world.order())


def test_a_template_error_plans_a_failed_row_and_the_event_goes_on(world: World) -> None:
    order = world.new_order("wo_open", assignee=None)
    assert world.plan("assignee_note", order) == []
    rows = world.rows(notification="assignee_note")
    assert {r["status"] for r in rows} == {"failed"}
    assert rows[0]["last_error"] == ("notification 'assignee_note' (body, zh): cannot read "
                                     "'name' of an empty value; guard it with {% if ... %}")


# ------------------------------------------------------------------ quiet hours


def test_quiet_hours_hold_until_the_calendar_opens_then_release(world: World) -> None:
    late = shanghai(2, 22, 30)  # Monday 22:30; contact hours are 08:00-21:00
    assert world.plan("customer_status_update", world.order(), now=late) == []
    rows = world.rows(notification="customer_status_update")
    opens = shanghai(3, 8, 0)
    assert {r["status"] for r in rows} == {"held"}
    assert {r["not_before"].replace(tzinfo=UTC) if r["not_before"].tzinfo is None
            else r["not_before"] for r in rows} == {opens}
    with world.rt.engine.connect() as conn:
        assert due(conn, opens - timedelta(seconds=1)) == []
        assert due(conn, opens) == [r["id"] for r in rows]
    inbox_row = rows[0]
    assert deliver(world.rt.engine, inbox_row["id"], opens - timedelta(minutes=1)) == "held"
    assert deliver(world.rt.engine, inbox_row["id"], opens) == "sent"
    with world.rt.engine.connect() as conn:
        [message] = inbox(conn, "cust_pd")
    assert message["subject"] == "您的工单进度更新：空调不制冷"


def test_the_lunch_break_of_the_standard_calendar_holds_until_13(world: World) -> None:
    world.plan("quiet_notice", world.order(), now=shanghai(2, 12, 15))
    [row] = world.rows(notification="quiet_notice")
    assert row["status"] == "held"
    with world.rt.engine.connect() as conn:
        assert due(conn, shanghai(2, 12, 59)) == []
        assert due(conn, shanghai(2, 13, 0)) == [row["id"]]


def test_critical_messages_are_never_held(world: World) -> None:
    sunday_night = shanghai(8, 23, 0)
    ids = world.plan("urgent_alert", {**world.order(), "urgent": True}, now=sunday_night)
    [row] = world.rows(notification="urgent_alert")
    assert ids == [row["id"]] and row["status"] == "pending" and row["not_before"] is None


# ------------------------------------------------------------------ dedupe


def test_the_same_message_is_not_planned_twice_while_one_is_waiting(world: World) -> None:
    first = world.plan("escalation", world.order())
    assert len(first) == 2
    assert world.plan("escalation", world.order(), cause="again") == []
    assert len(world.rows()) == 2
    for delivery in first:
        assert deliver(world.rt.engine, delivery, MONDAY_10,
                       transports={"inbox": CountingTransport(),
                                   "email": CountingTransport()}) == "sent"
    assert len(world.plan("escalation", world.order(), cause="later")) == 2


def test_dedupe_covers_held_messages(world: World) -> None:
    late = shanghai(2, 22, 30)
    world.plan("customer_status_update", world.order(), now=late)
    world.plan("customer_status_update", world.order(), now=late + timedelta(minutes=5))
    assert len(world.rows()) == 2


# ------------------------------------------------------------------ digest


def test_three_warnings_in_the_window_become_one_digest(world: World) -> None:
    orders = [world.order("wo_pd"), world.new_order("wo_b", title="洗衣机不排水"),
              world.new_order("wo_c", title="燃气灶打不着火")]
    for i, order in enumerate(orders):
        world.plan("sla_warning", order, now=MONDAY_10 + timedelta(minutes=5 * i))
    tech_inbox = world.rows(notification="sla_warning", channel="inbox", recipient="tech1")
    head, *attached = tech_inbox
    assert head["status"] == "held" and head["digest_count"] == 3
    assert [(r["status"], r["digest_parent"]) for r in attached] == \
        [("digested", head["id"])] * 2
    window_end = MONDAY_10 + timedelta(minutes=15)
    with world.rt.engine.connect() as conn:
        assert head["id"] not in due(conn, window_end - timedelta(seconds=1))
        ready = due(conn, window_end)
    heads = [r["id"] for r in world.rows(notification="sla_warning", status="held")]
    assert sorted(ready) == sorted(heads) and len(heads) == 3  # tech1 inbox+email, disp_pd
    sender = CountingTransport()
    assert deliver(world.rt.engine, head["id"], window_end,
                   transports={"inbox": sender}) == "sent"
    [message] = sender.sent
    assert message.subject == "【汇总】3 条 SLA 超时预警"
    assert [item["record_id"] for item in message.items] == [o["id"] for o in orders]
    lines = message.text.splitlines()
    assert lines[0] == "1. 【即将超时】空调不制冷" and "2. 【即将超时】洗衣机不排水" in lines
    assert "<ol><li><strong>【即将超时】空调不制冷</strong>" in message.html
    sent = world.rows(id=head["id"])[0]
    assert sent["digest_of"] == [r["id"] for r in attached]
    assert all(r["active_key"] is None for r in world.rows(digest_parent=head["id"]))
    # the English dispatcher's digest
    disp = world.rows(notification="sla_warning", channel="inbox", recipient="disp_pd")[0]
    deliver(world.rt.engine, disp["id"], window_end, transports={"inbox": sender})
    assert sender.sent[-1].subject == "[Digest] 3 × SLA breach warning"
    # a warning after the digest went out starts a new one
    world.plan("sla_warning", orders[0], now=window_end + timedelta(minutes=1))
    new_heads = world.rows(notification="sla_warning", channel="inbox", recipient="tech1",
                           status="held")
    assert len(new_heads) == 1 and new_heads[0]["digest_count"] == 1


def test_a_lone_message_in_a_digest_window_goes_out_as_itself(world: World) -> None:
    world.plan("sla_warning", world.order())
    head = world.rows(notification="sla_warning", channel="inbox", recipient="tech1")[0]
    sender = CountingTransport()
    deliver(world.rt.engine, head["id"], MONDAY_10 + timedelta(minutes=15),
            transports={"inbox": sender})
    assert sender.sent[0].subject == "【即将超时】空调不制冷" and sender.sent[0].items == ()


def test_a_warning_repeated_for_the_same_order_is_not_listed_twice(world: World) -> None:
    world.plan("sla_warning", world.order())
    world.plan("sla_warning", world.order(), now=MONDAY_10 + timedelta(minutes=3))
    rows = world.rows(notification="sla_warning", channel="inbox", recipient="tech1")
    assert len(rows) == 1 and rows[0]["digest_count"] == 1


# ------------------------------------------------------------------ delivery


def test_deliver_is_idempotent(world: World) -> None:
    [inbox_id, email_id] = world.plan("escalation", world.order())
    sender = CountingTransport()
    assert deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": sender}) == "sent"
    assert deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": sender}) == "sent"
    assert len(sender.sent) == 1
    with pytest.raises(NotificationError, match="no notification delivery 999"):
        deliver(world.rt.engine, 999, MONDAY_10)


def test_two_workers_cannot_both_send(world: World) -> None:
    [inbox_id, _] = world.plan("escalation", world.order())
    sender = CountingTransport(delay=0.3)
    results: list[str] = []

    def work() -> None:
        results.append(deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": sender}))
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(sender.sent) == 1
    assert sorted(results).count("sent") >= 1 and set(results) <= {"sent", "sending"}


def test_retries_back_off_then_fail(world: World) -> None:
    [inbox_id, _] = world.plan("escalation", world.order())
    boom = DeliveryError("try later", retryable=True, status=503)
    sender = CountingTransport(fail=[boom] * 5)
    engine = world.rt.engine
    at = MONDAY_10
    waits = []
    for _ in range(4):
        assert deliver(engine, inbox_id, at, {"inbox": sender}) == "pending"
        row = world.rows(id=inbox_id)[0]
        next_at = row["next_attempt_at"]
        next_at = next_at if next_at.tzinfo else next_at.replace(tzinfo=UTC)
        waits.append((next_at - at).total_seconds())
        assert deliver(engine, inbox_id, next_at - timedelta(seconds=1),
                       {"inbox": sender}) == "pending"  # not yet due
        with engine.connect() as conn:
            assert inbox_id not in due(conn, next_at - timedelta(seconds=1))
            assert inbox_id in due(conn, next_at)
        at = next_at
    assert waits == [30, 120, 600, 3600]
    assert deliver(engine, inbox_id, at, {"inbox": sender}) == "failed"
    row = world.rows(id=inbox_id)[0]
    assert row["attempts"] == 5 and row["last_error"] == "try later"
    assert row["active_key"] is None
    with engine.connect() as conn:
        log = conn.execute(select(attempts).where(attempts.c.delivery_id == inbox_id)
                           .order_by(attempts.c.id)).mappings().all()
    assert [(a["attempt"], a["ok"], a["status_code"]) for a in log] == \
        [(i, False, 503) for i in range(1, 6)]


def test_a_permanent_error_fails_at_once(world: World) -> None:
    [inbox_id, _] = world.plan("escalation", world.order())
    sender = CountingTransport(fail=[DeliveryError("no such user", retryable=False)])
    assert deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": sender}) == "failed"


def test_a_crashing_transport_is_retried_not_lost(world: World) -> None:
    [inbox_id, _] = world.plan("escalation", world.order())
    sender = CountingTransport(fail=[RuntimeError("bug")])
    assert deliver(world.rt.engine, inbox_id, MONDAY_10, {"inbox": sender}) == "pending"
    assert world.rows(id=inbox_id)[0]["last_error"] == "RuntimeError: bug"


def test_a_delivery_left_sending_is_taken_over_after_the_lease(world: World) -> None:
    [inbox_id, _] = world.plan("escalation", world.order())
    engine = world.rt.engine
    with engine.begin() as conn:  # a worker claimed it and died
        conn.execute(update(N).where(N.c.id == inbox_id).values(
            status="sending", claimed_at=MONDAY_10.astimezone(UTC), claim_token="dead",
            attempts=1))
    with engine.connect() as conn:
        assert inbox_id not in due(conn, MONDAY_10 + timedelta(minutes=4))
        assert inbox_id in due(conn, MONDAY_10 + timedelta(minutes=5))
    assert deliver(engine, inbox_id, MONDAY_10 + timedelta(minutes=1)) == "sending"
    assert deliver(engine, inbox_id, MONDAY_10 + timedelta(minutes=5)) == "sent"
    assert world.rows(id=inbox_id)[0]["attempts"] == 2


def test_deliveries_for_lists_a_records_history(world: World) -> None:
    world.plan("escalation", world.order(), cause="event 12")
    with world.rt.engine.connect() as conn:
        history = deliveries_for(conn, "work_order", world.ids["wo_pd"])
    assert [(h["notification"], h["channel"], h["status"], h["cause"]) for h in history] == [
        ("escalation", "inbox", "pending", "event 12"),
        ("escalation", "email", "pending", "event 12")]
    assert history[0]["created_at"] == MONDAY_10


# ------------------------------------------------------------------ inbox


def test_inbox_read_and_acknowledge(world: World) -> None:
    engine = world.rt.engine
    for name in ("escalation", "complaint_alert"):
        for delivery in world.plan(name, world.order()):
            deliver(engine, delivery, MONDAY_10,
                    transports={"email": CountingTransport()})
    with engine.begin() as conn:
        messages = inbox(conn, "sup_pd")
        assert [m["notification"] for m in messages] == ["complaint_alert", "escalation"]
        assert messages[1]["subject"] == "【派单升级】空调不制冷"
        assert messages[1]["severity"] == "critical"
        assert "工单“空调不制冷”" in messages[1]["body"]
        assert unread_count(conn, "sup_pd") == 2
        assert inbox(conn, "sup_ja") == []
        first = messages[1]["id"]
        assert not acknowledge(conn, "sup_ja", first, MONDAY_10)  # not theirs
        assert acknowledge(conn, "sup_pd", first, MONDAY_10)
        assert mark_read(conn, "sup_pd", messages[0]["id"], MONDAY_10)
        assert unread_count(conn, "sup_pd") == 0
        assert inbox(conn, "sup_pd", unread_only=True) == []
        acked = inbox(conn, "sup_pd")[1]
    assert acked["acknowledged_at"] == MONDAY_10 and acked["read_at"] == MONDAY_10


def test_a_deliver_due_job_sends_everything_due_and_leaves_held_messages(
        world: World) -> None:
    from dispatchflow.platform.assembly.jobs import deliver_due

    planned = world.plan("escalation", world.order()) + \
        world.plan("escalation", world.new_order("wo_second"))
    world.plan("customer_status_update", world.order(), now=shanghai(2, 22, 30))  # held
    assert deliver_due(world.rt) == len(planned)
    statuses = {r["id"]: r["status"] for r in world.rows()}
    assert {statuses[i] for i in planned} <= {"sent", "failed", "unconfigured"}
    assert [statuses[i] for i in planned].count("sent") >= 2  # the two inbox messages
    assert {s for i, s in statuses.items() if i not in planned} == {"held"}
    with world.rt.engine.connect() as conn:
        assert due(conn, MONDAY_10) == []
    assert deliver_due(world.rt) == 0
