"""Fast heartbeats (a stream tells its tests it is quiet at once) and the watchers' world."""

from __future__ import annotations

from typing import Any

import pytest

from dispatchflow.platform import defaults
from dispatchflow.platform.assembly import Runtime
from tests.live_stream import people


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "LIVE_HEARTBEAT_SECONDS", 0.1)


@pytest.fixture
def world(rt: Runtime) -> dict[str, Any]:
    """Two technicians far apart and two customers, with users (see ``people``)."""
    return people(rt)
