"""Shared set-up of the intake channel regressions: the reference bundle published on
SQLite, its secrets in the environment, a Flask test client, and a signed WeChat body."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.store.versions import publish
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"
SECRET = "wechat-shared-secret"


def intake_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """A runtime with the reference bundle published and the channel secrets set."""
    monkeypatch.setenv("WECHAT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("EMAIL_CHANNEL_SECRET", SECRET)
    app = compile_bundle(REFERENCE).app
    assert app is not None
    rt = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="test",
                                   database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    publish(rt.engine, app, created_by="test")
    rt.refresh()
    return rt


def client_for(rt: Runtime) -> Any:
    """A Flask test client of the web app on ``rt``."""
    return create_app(runtime=rt, TESTING=True).test_client()


@contextmanager
def intake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runtime, Any,
                                                                               bytes]]:
    """(runtime, test client, a valid unsigned WeChat body); the engine is closed after."""
    rt = intake_runtime(tmp_path, monkeypatch)
    try:
        yield rt, client_for(rt), wechat_body(rt)
    finally:
        rt.engine.dispose()


def wechat_body(rt: Runtime) -> bytes:
    """A valid WeChat repair request for a new customer."""
    cid = rt.records.create(SYSTEM_ACTOR, "customer", {"name": "李娜",
                                                       "phone": "13800000002"})["id"]
    return json.dumps({"客户编号": cid, "故障描述": "客厅空调不制冷", "故障类型": "空调",
                       "位置": "31.2036,121.5903"}, ensure_ascii=False).encode()


def signed_now(body: bytes, key: str = "", at: float | None = None) -> str:
    """The X-Wechat-Signature value of ``body`` sent with ``key`` at ``at`` (default now)."""
    # Imported here so the body-only replay regression also runs on the old code.
    from dispatchflow.platform.intake.signatures import sign

    return sign(SECRET.encode(), body, timestamp=int(time.time() if at is None else at),
                key=key)


def post(client: Any, body: bytes, signature: str, key: str | None = None) -> Any:
    """POST ``body`` to /channels/wechat with the signature and an Idempotency-Key."""
    headers = {"Content-Type": "application/json", "X-Wechat-Signature": signature}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/channels/wechat", data=body, headers=headers)


def orders(rt: Runtime) -> int:
    """How many work orders are stored."""
    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count())
                                .select_from(rt.tables["work_order"])).scalar_one())
