"""The generated forms in a real browser (Playwright driving Debian's chromium).

``.ci/run`` installs chromium and CJK fonts with apt-get; Playwright's own
browser download cannot reach the network here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from dispatchflow.dsl.compiler import compile_bundle
from dispatchflow.platform.assembly import Runtime
from dispatchflow.platform.config import Settings
from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user
from dispatchflow.platform.store.versions import publish
from dispatchflow.web.app import create_app

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "field-service"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    rt = Runtime(Settings.from_env(home=tmp_path, database_url=f"sqlite:///{tmp_path}/b.db",
                                   secret_key="browser"))
    app_ir = compile_bundle(REFERENCE).app
    assert app_ir is not None
    publish(rt.engine, app_ir, created_by="test")
    rt.refresh()
    customer = rt.records.create(SYSTEM_ACTOR, "customer", {"name": "张伟",
                                                            "phone": "13800000001"})
    add_user(rt.engine, "cust", name="张伟", password="pw-cust", roles=["customer"],
             attributes={"customer": customer["id"]})
    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "rt": rt, "customer": customer}
    server.shutdown()
    thread.join(timeout=10)
    rt.engine.dispose()


@pytest.fixture
def page(browser: Browser) -> Page:
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    return context.new_page()


def login(page: Page, base: str) -> None:
    page.goto(f"{base}/login?next=/forms/repair_request")
    page.fill("#username", "cust")
    page.fill("#password", "pw-cust")
    page.click("button[type=submit]")
    page.wait_for_url("**/forms/repair_request")


def fill_request(page: Page, title: str) -> None:
    page.select_option("#category", "plumbing")
    page.fill("#title", title)
    page.fill("#description", "厨房水槽下方水管爆裂，地面积水")
    page.fill("#address", "浦东新区世纪大道100号")
    page.fill("#location_lat", "31.2352")
    page.fill("#location_lng", "121.5055")


def test_submitting_the_repair_form_creates_a_record(live: dict[str, Any], page: Page) -> None:
    login(page, live["url"])
    fill_request(page, "厨房水管漏水")
    page.click("button.df-submit")
    page.wait_for_url("**/forms/repair_request/done**")
    record_id = int(page.inner_text("#record-id"))
    rt = live["rt"]
    table = rt.tables["work_order"]
    with rt.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == record_id)).mappings().one()
    assert row["title"] == "厨房水管漏水" and row["category"] == "plumbing"
    assert row["customer"] == live["customer"]["id"]  # filled from the signed-in user
    assert row["channel"] == "web" and row["location_lat"] == pytest.approx(31.2352)
    # The tracking link works without logging in.
    link = page.get_attribute("#tracking-link", "href")
    assert link is not None
    page.context.clear_cookies()
    page.goto(link)
    expect(page.locator("dl.record")).to_contain_text("厨房水管漏水")


def test_a_required_field_left_empty_shows_the_error_next_to_it(live: dict[str, Any],
                                                                page: Page) -> None:
    login(page, live["url"])
    fill_request(page, "")
    page.click("button.df-submit")
    error = page.locator("#title-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("“标题”是必填项。")
    expect(page.locator("#title")).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/forms/repair_request")  # nothing was submitted
    rt = live["rt"]
    with rt.engine.connect() as conn:
        assert conn.execute(select(rt.tables["work_order"])).first() is None
