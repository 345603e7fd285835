"""Issue #22, finding 8: a recipient field holding ``a@x, b@y`` became two ``To:``
addresses.

The field's text went into the ``To:`` header as it was, so whoever could write the
field (a customer, a channel sender) could copy any notification to an address of
their choosing. A recipient address must now be exactly one address: the value is
refused with a logged reason and a ``suppressed`` delivery row that says why.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dispatchflow.platform.notify import deliver
from dispatchflow.platform.notify.channels import EmailTransport

from .notify_setup import MONDAY_10, notify_world, smtp_server

LISTED = "li.na@example.com, attacker@evil.example"


def test_a_listed_address_in_a_recipient_field_is_refused_with_a_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with notify_world(tmp_path) as world, smtp_server() as (port, sink):
        order = world.new_order("wo_list", contact_email=LISTED)
        with caplog.at_level(logging.WARNING):
            planned = world.plan("assignee_note", order)
        transport = EmailTransport(world.rt.engine, {
            "DISPATCHFLOW_SMTP_HOST": "127.0.0.1", "DISPATCHFLOW_SMTP_PORT": str(port)})
        for delivery_id in planned:
            deliver(world.rt.engine, delivery_id, MONDAY_10, {"email": transport})
        recipients = [tuple(e.rcpt_tos) for e in sink.envelopes]
        assert recipients == [("sup.pd@example.com",)]
        [refused] = [r for r in world.rows(notification="assignee_note", channel="email")
                     if r["user_id"] is None]
        assert refused["status"] == "suppressed" and refused["address"] is None
        reason = (f"the field value '{LISTED}' is not exactly one e-mail address (a list, a "
                  "display name or a malformed value); the message is not sent to it")
        assert refused["last_error"] == reason
        assert any(reason in r.getMessage() for r in caplog.records)


def test_a_users_email_attribute_holding_two_addresses_is_refused(tmp_path: Path) -> None:
    with notify_world(tmp_path) as world:
        from sqlalchemy import update

        from dispatchflow.platform.store.db import users

        with world.rt.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == "sup_pd").values(
                attributes={"regions": ["PD"], "email": "sup.pd@example.com;x@evil.example"}))
        world.plan("escalation", world.order())
        [row] = world.rows(notification="escalation", channel="email")
        assert (row["status"], row["address"]) == ("suppressed", None)
        assert row["last_error"].startswith("user 'sup_pd': the e-mail attribute "
                                            "'sup.pd@example.com;x@evil.example' is not exactly")
