"""The API page (/api/v1/docs) in a real browser under the app's CSP.

Swagger UI must load from our own origin with no CSP violation and render
every operation of the document, on a phone (390 px) and a desktop (1440 px).
Screenshots go to ``$SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from reference_runtime import published_runtime
from werkzeug.serving import make_server

from dispatchflow.web.app import CSP, create_app


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    rt = published_runtime(tmp_path_factory.mktemp("docs"), "docs")
    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    rt.engine.dispose()


@pytest.mark.parametrize("width", [390, 1440])
def test_the_api_page_renders_every_operation_without_csp_violations(
        base_url: str, width: int, tmp_path: Path, browser: Browser) -> None:
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(locale="zh-CN",
                               viewport={"width": width, "height": 900}).new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    response = page.goto(f"{base_url}/api/v1/docs")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == CSP
    expected = page.evaluate("""async () => {
        const doc = await (await fetch('/api/v1/openapi.json')).json();
        const verbs = ['get', 'put', 'post', 'patch', 'delete'];
        return Object.values(doc.paths).flatMap(
            (item) => Object.keys(item).filter((m) => verbs.includes(m))).length;
    }""")
    # wait_for_function would run eval under the page's CSP: poll instead
    deadline = time.monotonic() + 30
    rendered = 0
    while time.monotonic() < deadline:
        rendered = page.evaluate("document.querySelectorAll('.opblock').length")
        if rendered >= expected:
            break
        page.wait_for_timeout(200)
    assert expected > 36 and rendered == expected
    assert "Field service dispatch API" in page.locator(".info .title").inner_text()
    page.locator(".opblock-summary").first.click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"api-docs-{width}.png"), full_page=False)
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == []
    assert [m for m in console if m.startswith("error")] == []
    assert failed == []
