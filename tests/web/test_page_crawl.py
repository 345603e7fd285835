"""Every page as every demo role: crawl from the home page, fail on any 5xx.

Signs in as each user `serve --demo` seeds (and as an anonymous visitor with a
tracking link), follows every same-site link from the home page, and on every
page submits every form twice, with the CSRF token: once empty and once
filled in (the values the page shows, sample values where it shows none, a
PNG for each file input). Pages are visited in Chinese, then again in English.
Prints how many pages × roles it visited.
"""

from __future__ import annotations

import io
from collections import deque
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from portal_world import PNG, demo_world, login, track_path

from dispatchflow.web.app import create_app

#: Pages a role may visit at most (a runaway crawl is a bug too).
MAX_PAGES = 150

#: Sample values for inputs the page leaves empty, by input type (names for patterns).
SAMPLES = {"text": "测试 crawl", "textarea": "测试内容", "number": "3",
           "datetime-local": "2026-12-08T10:00", "date": "2026-12-08"}
BY_NAME = {"contact_phone": "13800000001", "location_lat": "31.2", "location_lng": "121.5",
           "phone": "13800000001"}


class _Page(HTMLParser):
    """Links and forms of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get"),
                          "fields": [], "files": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind == "file":
                self._form["files"].append(a["name"])
            elif kind == "checkbox":  # a filled-in form ticks every box
                self._form["fields"].append((a["name"], a.get("value", "on"), kind))
            elif kind == "radio":
                if not any(n == a["name"] for n, _, _ in self._form["fields"]):
                    self._form["fields"].append((a["name"], a.get("value", "on"), kind))
            else:
                self._form["fields"].append((a["name"], a.get("value", ""), kind))
        elif self._form is not None and tag == "select" and a.get("name"):
            self._select = a["name"]
        elif self._form is not None and tag == "option" and self._select and a.get("value"):
            self._form["fields"].append((self._select, a["value"], "select"))
            self._select = None
        elif self._form is not None and tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form["fields"].append((a["name"], "", "textarea"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _filled(form: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value, kind in form["fields"]:
        if not value and kind not in ("hidden", "select"):
            value = BY_NAME.get(name) or SAMPLES.get(kind, "")
        data.setdefault(name, value)
    for name in form["files"]:
        data[name] = (io.BytesIO(PNG), "photo.png", "image/png")
    return data


def _crawl(client: Any, seeds: list[str], failures: list[str], role: str
           ) -> tuple[list[str], int]:
    """Visit every page reachable from ``seeds``, then submit every form found; returns
    the pages and how many posts it made. Forms with inputs go before plain action buttons, so that the record
    they were found on is still in the state that offered them."""
    seen: list[str] = []
    forms: dict[str, dict[str, Any]] = {}
    queue = deque(seeds)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.append(url)
        res = client.get(url)
        if res.status_code >= 500:
            failures.append(f"{role} GET {url}: {res.status_code}")
        if res.status_code in (301, 302, 303):
            queue.append(res.headers["Location"])
            continue
        if not res.content_type.startswith("text/html"):
            continue
        page = _parse(res.get_data(as_text=True))
        for href in page.links:
            parts = urlsplit(urljoin(url, href))
            if parts.netloc not in ("", "localhost") or "lang=" in parts.query or \
                    parts.path.startswith("/static"):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        for form in page.forms:
            action = urljoin(url, form["action"] or url)
            if form["method"].lower() == "post" and not action.endswith("/logout"):
                forms.setdefault(action, form)
    buttons = [a for a, f in forms.items() if len(f["fields"]) <= 1 and not f["files"]]
    for action in [a for a in forms if a not in buttons] + buttons:
        form = forms[action]
        token = next((v for n, v, _ in form["fields"] if n == "csrf_token"), "")
        for body in ({"csrf_token": token}, _filled(form)):
            res = client.post(action, data=body, content_type="multipart/form-data")
            if res.status_code >= 500:
                failures.append(f"{role} POST {action} {sorted(body)}: {res.status_code}")
    return seen, 2 * len(forms)


def test_every_page_as_every_demo_role_answers_without_a_server_error(rt) -> None:
    world = demo_world(rt)
    app = create_app(runtime=rt, TESTING=True)
    track = track_path(app.test_client(), world["feedback"])
    failures: list[str] = []
    visited = posts = 0
    roles = ["anonymous", *sorted(world["passwords"])]
    for user in roles:
        client = app.test_client()
        if user != "anonymous":
            login(client, user, world["passwords"][user])
        pages, posted = _crawl(client, ["/", track] if user == "anonymous" else ["/"],
                               failures, user)
        client.get("/?lang=en")
        for url in pages:  # the same pages in English
            res = client.get(url)
            if res.status_code >= 500:
                failures.append(f"{user} GET {url} (en): {res.status_code}")
        assert len(pages) > 1, f"{user} reached nothing from the home page"
        visited += len(pages)
        posts += posted
    print(f"\npage crawl: {visited} pages x roles visited ({len(roles)} roles, each page in zh "
          f"and en), {posts} form posts")
    assert not failures, "\n".join(failures)
