"""Chromium for the browser tests: Debian's build, driven by Playwright.

``.ci/run`` installs chromium and CJK fonts with apt-get; Playwright's own
browser download cannot reach the network here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless chromium, closed after the test; the test fails if it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get install -y chromium fonts-noto-cjk",
                    pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
