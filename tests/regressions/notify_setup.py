"""Shared set-up of the outbound notification regressions: the notification tests' world
(:mod:`notify_world` of tests/platform/notify) on a SQLite database, and servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# notify_world is a plain module next to the notification tests; share it, not a copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform" / "notify"))

from notify_world import (  # noqa: E402
    MONDAY_10,
    World,
    compile_variant,
    make_world,
    smtp_server,
    webhook_server,
)

from dispatchflow.platform.assembly import Runtime  # noqa: E402
from dispatchflow.platform.config import Settings  # noqa: E402
from dispatchflow.platform.store.versions import publish  # noqa: E402

__all__ = ["MONDAY_10", "World", "notify_world", "smtp_server", "webhook_server"]


@contextmanager
def notify_world(tmp_path: Path) -> Iterator[World]:
    """The notification tests' world on a fresh SQLite database at MONDAY_10."""
    rt = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="test",
                                   database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"),
                 clock=lambda: MONDAY_10)
    try:
        publish(rt.engine, compile_variant(), created_by="test")
        rt.refresh()
        yield make_world(rt)
    finally:
        rt.engine.dispose()
