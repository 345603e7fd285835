"""Issue #21, item 8: a bundle channel without its configuration failed and logged every
delivery.

With no SMTP settings, each e-mail of each notification was an attempt, a ``failed``
row and a warning line (the flows benchmark printed about 2,400 of them). Now such a
delivery is held as ``unconfigured`` -- not retried, not counted as an attempt -- the
reason is logged once per process (at ``serve``/``worker`` start as one line), and
when a worker starts with the configuration the held messages are sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dispatchflow.platform.notify import deliver, due
from dispatchflow.platform.notify.channels import EmailTransport
from dispatchflow.platform.store.db import attempts

from .notify_setup import MONDAY_10, notify_world, smtp_server


def test_unconfigured_email_logs_once_holds_the_messages_and_sends_them_later(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DISPATCHFLOW_SMTP_HOST", "DISPATCHFLOW_SMTP_PORT"):
        monkeypatch.delenv(var, raising=False)
    with notify_world(tmp_path) as world, smtp_server() as (port, sink):
        planned = []
        for i in range(5):
            order = world.new_order(f"wo_{i}", title=f"空调{i}")
            planned += [d for d in world.plan("escalation", order)
                        if world.rows(id=d)[0]["channel"] == "email"]
        with caplog.at_level(logging.INFO):
            statuses = [deliver(world.rt.engine, d, MONDAY_10) for d in planned]
        assert statuses == ["unconfigured"] * 5
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) <= 1 and all("DISPATCHFLOW_SMTP_HOST is not set" in w
                                          for w in warnings)
        rows = [world.rows(id=d)[0] for d in planned]
        assert {(r["status"], r["attempts"]) for r in rows} == {("unconfigured", 0)}
        with world.rt.engine.connect() as conn:
            assert conn.execute(attempts.select()).all() == []
            assert not set(due(conn, MONDAY_10)) & set(planned)  # not retried
        # A later start without the configuration reports it in one line and sends nothing.
        from dispatchflow.platform.notify.setup import start_report
        from dispatchflow.platform.notify.unconfigured import release

        line = start_report(world.rt.app, world.rt.engine, MONDAY_10, {})
        assert line is not None and "\n" not in line
        assert "e-mail is not configured: DISPATCHFLOW_SMTP_HOST is not set (notification '" \
            in line
        # A worker starting with SMTP configured releases them; the scheduler sends them.
        env = {"DISPATCHFLOW_SMTP_HOST": "127.0.0.1", "DISPATCHFLOW_SMTP_PORT": str(port)}
        assert release(world.rt.engine, MONDAY_10, env) == (5, 0)
        with world.rt.engine.connect() as conn:
            assert set(planned) <= set(due(conn, MONDAY_10))
        transport = EmailTransport(world.rt.engine, env)
        assert [deliver(world.rt.engine, d, MONDAY_10, {"email": transport})
                for d in planned] == ["sent"] * 5
        assert len(sink.envelopes) == 5
