"""The customer's tracking page follows the order live, in a real browser under the CSP.

A phone (390×844) opens a tracking link without signing in; the technician accepts
and departs; the status on the page changes within seconds, without a reload,
through ``GET /live?track=`` and the page's status fragment (htmx). In zh and en.
Screenshots go to ``$SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_stream import order_near, people
from playwright.sync_api import Browser, Page
from reference_runtime import published_runtime
from werkzeug.serving import make_server

from dispatchflow.platform.records.users import load_actor
from dispatchflow.platform.runtime.runner import take_action
from dispatchflow.web.app import CSP, create_app
from dispatchflow.web.tracking import tracking_token

STATES = {"zh": ("待接单", "已接单", "在途"), "en": ("Offered", "Accepted", "En route")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    rt = published_runtime(tmp_path, "tracking")
    world = people(rt)
    app = create_app(runtime=rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "rt": rt, "world": world,
           "app": app}
    server.shutdown()
    thread.join(timeout=10)
    rt.engine.dispose()


def status_text(page: Page) -> str:
    # wait_for_function would run eval under the page's CSP: read the DOM instead
    return str(page.evaluate("document.getElementById('track-status').innerText"))


def wait_for_text(page: Page, text: str, seconds: float = 5.0) -> float:
    """Seconds until the status part shows ``text``; fails after ``seconds``."""
    start = time.monotonic()
    while text not in status_text(page):
        assert time.monotonic() - start < seconds, f"{text!r} never shown: {status_text(page)}"
        page.wait_for_timeout(50)
    return time.monotonic() - start


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_tracking_page_follows_the_order_live(served: dict[str, Any], browser: Browser,
                                                   tmp_path: Path, lang: str) -> None:
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    rt = served["rt"]
    order = order_near(rt, served["world"], 0)  # offered to tech0
    with served["app"].test_request_context():
        token = tracking_token("work_order", order)
    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US",
                                  viewport={"width": 390, "height": 844})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    requests: list[str] = []
    failed: list[str] = []  # the browser's own /favicon.ico aside
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    page.on("request", lambda req: requests.append(req.url))
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))
    response = page.goto(f"{served['url']}/track/{token}?lang={lang}")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == CSP
    offered, accepted, en_route = STATES[lang]
    assert offered in status_text(page)
    deadline = time.monotonic() + 5
    while not any("/live?track=" in url for url in requests):
        assert time.monotonic() < deadline, "the page did not open its live stream"
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"tracking-{lang}-390-before.png"), full_page=True)
    navigations = len(reloads)

    tech = load_actor(rt.engine, "tech0")
    assert tech is not None
    take_action(rt, tech, "work_order", order, "accept")
    took = wait_for_text(page, accepted)
    take_action(rt, tech, "work_order", order, "depart")
    took = max(took, wait_for_text(page, en_route))
    assert offered not in status_text(page)
    assert took < 5
    assert len(reloads) == navigations  # updated in place, not reloaded
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"tracking-{lang}-390-after.png"), full_page=True)
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == []
    assert failed == []  # (a failed load's console error names no URL: checked here)
    assert [m for m in console if m.startswith("error")
            and "Failed to load resource" not in m] == []
    context.close()
