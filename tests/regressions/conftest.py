"""Fixtures of the portal regressions: the reference app with the demo world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from portal_world import demo_world, published_runtime

from dispatchflow.platform.runtime import Runtime


@pytest.fixture
def portal_rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = published_runtime(database_url, tmp_path / "home")
    yield rt
    rt.close()


@pytest.fixture
def demo(portal_rt: Runtime) -> dict[str, Any]:
    """Demo users and records, an order in service for demo_technician and one awaiting
    demo_customer's rating (see tests/portal_world.py)."""
    return demo_world(portal_rt)
