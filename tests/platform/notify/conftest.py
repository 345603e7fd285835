"""Fixtures for the notification tests: a published app with people and orders
(:mod:`notify_world`), and real servers: an SMTP server (aiosmtpd) and an HTTP
server for webhooks, both on 127.0.0.1.

The database is SQLite and then PostgreSQL (``database_url`` in tests/conftest.py);
PostgreSQL being down fails the tests, it never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_world import (
    MONDAY_10,
    SmtpSink,
    WebhookServer,
    World,
    compile_variant,
    make_world,
)
from notify_world import smtp_server as smtp_controller
from notify_world import webhook_server as webhook_receiver

from dispatchflow.dsl.compiler import App
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.store.versions import publish


@pytest.fixture(scope="session")
def notify_app() -> App:
    """The reference bundle plus the test notifications, compiled."""
    return compile_variant()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, notify_app: App) -> Iterator[Runtime]:
    """A runtime on an empty database (SQLite, then PostgreSQL) with the app published."""
    settings = Settings.from_env(home=tmp_path / "home", database_url=database_url,
                                 secret_key="test-secret")
    runtime = Runtime(settings, clock=lambda: MONDAY_10)
    publish(runtime.engine, notify_app, created_by="test")
    runtime.refresh()
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def world(rt: Runtime) -> World:
    """See :func:`notify_world.make_world`."""
    return make_world(rt)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, SmtpSink]]:
    """A real SMTP server on 127.0.0.1: (port, sink of received envelopes)."""
    with smtp_controller() as server:
        yield server


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """An HTTP server on 127.0.0.1 recording POSTs; queue status codes in ``statuses``."""
    with webhook_receiver() as server:
        yield server
