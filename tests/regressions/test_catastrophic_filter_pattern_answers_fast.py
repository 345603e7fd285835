"""Issue #22.3: ``?filter=... matches "^(a+)+$"`` froze the server.

With Python's backtracking ``re`` behind SQLite's REGEXP, a title of 27 ``a``
and a ``!`` took seconds (doubling with each extra ``a``) while holding the GIL,
so an admin's ``/me`` waited behind it. Any signed-in role can send such a
filter. It must now answer at once, with the right rows, and ``/me`` must keep
answering while it runs. Both databases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatchflow.platform import defaults
from dispatchflow.platform.records.users import create_token
from dispatchflow.web.app import create_app

from .webapp import add_orders, published_runtime

EVIL = "a" * 27 + "!"
FILTER = 'work_order.title matches "^(a+)+$"'


@pytest.fixture
def web(database_url: str, tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    with published_runtime(database_url, tmp_path / "home") as rt:
        add_orders(rt, [EVIL, "a" * 27])
        token = create_token(rt.engine, "disp", name="test").token
        yield create_app(runtime=rt, TESTING=True), {"Authorization": f"Bearer {token}"}


def test_a_catastrophic_pattern_answers_fast_and_others_keep_answering(
        web: tuple[Any, dict[str, str]]) -> None:
    app, auth = web
    answer: dict[str, Any] = {}

    def filtered() -> None:
        started = time.monotonic()
        res = app.test_client().get("/api/v1/work_order", query_string={"filter": FILTER},
                                    headers=auth)
        answer.update(status=res.status_code, body=res.get_json(),
                      seconds=time.monotonic() - started)

    worker = threading.Thread(target=filtered)
    worker.start()
    time.sleep(0.5)  # the filter request is well under way
    started = time.monotonic()
    me = app.test_client().get("/api/v1/me", headers=auth)
    me_seconds = time.monotonic() - started
    worker.join(timeout=120)
    assert me.status_code == 200
    assert me_seconds < 1.0, f"/me waited {me_seconds:.1f} s behind the filter"
    assert answer["status"] == 200, answer["body"]
    assert answer["seconds"] < 2.0, f"the filter took {answer['seconds']:.1f} s"
    assert [item["title"] for item in answer["body"]["items"]] == ["a" * 27]


def test_a_list_query_past_its_time_limit_answers_503(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with published_runtime(f"sqlite:///{tmp_path / 'test.db'}", tmp_path / "home") as rt:
        add_orders(rt, [EVIL])
        token = create_token(rt.engine, "disp", name="test").token
        monkeypatch.setattr(defaults, "LIST_QUERY_TIMEOUT", 1e-6)
        monkeypatch.setattr(defaults, "SQLITE_DEADLINE_CHECK_STEPS", 1)
        res = create_app(runtime=rt, TESTING=True).test_client().get(
            "/api/v1/work_order", query_string={"filter": FILTER},
            headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 503
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["type"].endswith("/query-timeout")
    assert body["detail"] == "the query ran longer than 1e-06 s and was stopped"
    assert "narrow the filter" in body["hint"]
