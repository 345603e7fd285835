"""The technician's job -> completion report, and the customer's tracking page, in chromium.

At 390 px (a phone) and 1440 px (a desktop), in Chinese and English. Screenshots
go to ``$DISPATCHFLOW_SCREENSHOTS`` (default: the test's temporary folder); the
test prints where.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from portal_world import demo_world, published_runtime, track_path
from werkzeug.serving import make_server

from dispatchflow.web.app import create_app

WIDTHS = (390, 1440)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    rt = published_runtime(f"sqlite:///{tmp_path}/b.db", tmp_path / "home")
    world = demo_world(rt)
    app = create_app(runtime=rt)
    world["track"] = track_path(app.test_client(), world["feedback"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "rt": rt, **world}
    server.shutdown()
    thread.join(timeout=10)
    rt.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DISPATCHFLOW_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def new_page(browser: Any, width: int, lang: str) -> Page:
    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-GB",
                                  viewport={"width": width, "height": 900})
    return context.new_page()


def sign_in(page: Page, base: str, user: str, password: str, lang: str) -> None:
    page.goto(f"{base}/login?lang={lang}")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_technician_opens_the_completion_report_from_the_job(
        live: dict[str, Any], browser: Any, shots: Path, lang: str) -> None:
    job = live["in_service"]
    for width in WIDTHS:
        page = new_page(browser, width, lang)
        sign_in(page, live["url"], "demo_technician", live["passwords"]["demo_technician"],
                lang)
        page.screenshot(path=str(shots / f"tech-home-{lang}-{width}.png"), full_page=True)
        page.click("#my-records a")
        page.wait_for_url("**/records/work_order")
        page.screenshot(path=str(shots / f"tech-list-{lang}-{width}.png"), full_page=True)
        page.click(f"#record-{job} a.card-title")
        page.wait_for_url(f"**/records/work_order/{job}")
        expect(page.locator("h1")).to_contain_text("卫生间水管漏水")
        page.screenshot(path=str(shots / f"tech-job-{lang}-{width}.png"), full_page=True)
        page.click(".record-actions a.button")
        page.wait_for_url(f"**/records/work_order/{job}/forms/completion_report")
        expect(page.locator("#resolution")).to_be_visible()
        expect(page.locator("#asset_code")).to_be_visible()  # the job is an appliance
        page.screenshot(path=str(shots / f"completion-{lang}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_customer_tracking_page_reads_well(live: dict[str, Any], browser: Any,
                                               shots: Path, lang: str) -> None:
    for width in WIDTHS:
        page = new_page(browser, width, lang)
        page.goto(f"{live['url']}{live['track']}?lang={lang}")
        expect(page.locator("dl.record")).to_contain_text(live["technician_name"])
        text = page.inner_text("dl.record")
        assert "True" not in text and "False" not in text and "T0" not in text
        page.screenshot(path=str(shots / f"track-{lang}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.click(".record-actions a.button")  # the rating form: log in first
        page.wait_for_url("**/login?next=**")
        page.fill("#username", "demo_customer")
        page.fill("#password", live["passwords"]["demo_customer"])
        page.click("main button[type=submit]")
        page.wait_for_url("**/forms/customer_feedback")
        page.screenshot(path=str(shots / f"rating-{lang}-{width}.png"), full_page=True)
        page.goto(f"{live['url']}/records/work_order/999999")  # the site's own error page
        expect(page.locator(".error-page .error-status")).to_have_text("404")
        page.screenshot(path=str(shots / f"error-404-{lang}-{width}.png"), full_page=True)
        page.context.close()
