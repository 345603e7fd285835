"""Live updates over Redis pub/sub: a commit in another runtime reaches a web app's
stream; a Redis that goes away ends streams cleanly and never fails a request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform import defaults
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.runtime.queue import InlineQueue
from dispatchflow.platform.store.versions import publish
from tests.integration.conftest import RedisServer
from tests.live_stream import changes_of, open_stream, order_near, people, watcher
from tests.portal_world import REFERENCE


def _runtime(tmp_path: Path, redis_url: str) -> Runtime:
    rt = Runtime(Settings.from_env(home=tmp_path / "home",
                                   database_url=f"sqlite:///{tmp_path / 'live.db'}",
                                   redis_url=redis_url, secret_key="test-secret"))
    rt.queue = InlineQueue(rt)  # this test's "worker" processes its own events
    return rt


@pytest.fixture
def runtimes(tmp_path: Path, private_redis: RedisServer) -> Any:
    """The web app's runtime and a worker's: separate engines, brokers, Redis connections."""
    web = _runtime(tmp_path, private_redis.url)
    app = compile_bundle(REFERENCE).app
    assert app is not None
    publish(web.engine, app, created_by="test")
    web.refresh()
    worker = _runtime(tmp_path, private_redis.url)
    worker.refresh()
    yield web, worker
    worker.close()
    web.close()


def test_a_commit_in_another_runtime_reaches_the_stream_through_redis(
        runtimes: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch) -> None:
    # A heartbeat far longer than the wait below: only a Redis nudge gets the change here.
    monkeypatch.setattr(defaults, "LIVE_HEARTBEAT_SECONDS", 30.0)
    web, worker = runtimes
    world = people(worker)
    response, events = open_stream(watcher(web, "tech0"))
    made: list[int] = []
    try:
        writer = threading.Thread(target=lambda: made.append(order_near(worker, world, 0)))
        started = time.monotonic()
        writer.start()
        seen = []
        for event in events:  # the world has no order: the first one is the new one
            seen.append(event)
            if any(entity == "work_order" for entity, _ in changes_of(seen)):
                break
        assert time.monotonic() - started < 5.0
        writer.join(10)
        assert changes_of(seen) <= {("work_order", made[0])} | {
            ("technician", t["id"]) for t in world["techs"]}
    finally:
        response.close()


def test_redis_going_away_ends_streams_cleanly_and_fails_nothing(
        runtimes: tuple[Runtime, Runtime], private_redis: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "LIVE_HEARTBEAT_SECONDS", 0.2)
    web, worker = runtimes
    world = people(worker)
    client = watcher(web, "tech0")
    response, events = open_stream(client)
    first = order_near(worker, world, 0)
    seen = []
    for event in events:  # the first order's changes, then a heartbeat
        seen.append(event)
        if event.name == "comment" and ("work_order", first) in changes_of(seen):
            break
    last = [e for e in seen if e.id][-1].id
    private_redis.process.kill()
    private_redis.process.wait(10)
    rest = list(events)  # the stream ends by itself: the page reconnects
    assert rest and all(e.name == "comment" for e in rest)
    response.close()
    # Commits go on without Redis; a reconnecting page gets what it missed from the
    # database, then the stream ends again (no broker to wait on), never a 500.
    later = order_near(worker, world, 0)
    response, events = open_stream(client, last)
    try:
        assert changes_of(list(events)) == {("work_order", later)}
    finally:
        response.close()
