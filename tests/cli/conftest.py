"""Fixtures for the command-line tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dispatchflow.cli import main


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``dispatchflow ARGS...`` in process (arguments made strings); exceptions propagate."""
    runner = CliRunner()

    def invoke(*args: Any) -> Result:
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return invoke
