"""Live updates benchmark: from a commit to a page's ``/live`` stream seeing it.

Run::

    python bench/live_bench.py [--changes N] [--warmup W]

On the embedded default (a SQLite file, jobs inline, the in-process broker), with
the reference bundle published: the web app runs under a threaded WSGI server on
a free port; a signed-in admin's browser-like client reads ``GET /live`` in a
thread while an API client changes one work order N times (``PATCH`` with a
bearer token), one after another. For each change:

- ``api_roundtrip``: the PATCH from sending to its response (the baseline: the
  change is committed and its event processed inline when it returns);
- ``request sent -> /live`` (shown, not in the last line): from sending the PATCH
  to the stream delivering it;
- ``live``: from the PATCH returning to the stream delivering a change event of
  that order at the new ``row_version`` (or later). The event may come before
  the response (the nudge goes out at commit, before the response is written):
  such a change counts 0 ms and is reported as ``early``.

The last line is ``live_p50_ms=A live_p95_ms=B api_roundtrip_p50_ms=C``.
PostgreSQL + Redis with two workers, and the console's rendering, come later
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatchflow.dsl.compiler import compile_bundle  # noqa: E402
from dispatchflow.platform.assembly import Runtime  # noqa: E402
from dispatchflow.platform.config import Settings  # noqa: E402
from dispatchflow.platform.records.actors import SYSTEM_ACTOR  # noqa: E402
from dispatchflow.platform.records.users import add_user, create_token  # noqa: E402
from dispatchflow.platform.store.versions import publish  # noqa: E402
from dispatchflow.web.app import create_app  # noqa: E402

#: Seconds to wait for one change's event before the run fails.
EVENT_TIMEOUT = 10.0


class Watcher(threading.Thread):
    """Reads the stream; remembers when each (record id, row version) was first seen."""

    def __init__(self, session: requests.Session, url: str) -> None:
        super().__init__(daemon=True)
        self.response = session.get(url, stream=True, timeout=60)
        self.response.raise_for_status()
        self.seen: dict[int, tuple[int, float]] = {}  # record id -> (newest version, when)
        self.changed = threading.Condition()

    def run(self) -> None:
        try:
            self._read()
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the run closed the stream (requests then reads from a closed socket)

    def _read(self) -> None:
        for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
            if not line or not line.startswith("data: "):
                continue
            data = json.loads(line[6:])
            version = data.get("row_version")
            if data.get("entity") != "work_order" or version is None:
                continue
            with self.changed:
                if version > self.seen.get(data["record_id"], (0, 0.0))[0]:
                    self.seen[data["record_id"]] = (version, time.perf_counter())
                    self.changed.notify_all()

    def wait_for(self, record_id: int, version: int) -> float:
        """When the stream first showed ``record_id`` at ``version`` or later."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        with self.changed:
            while self.seen.get(record_id, (0, 0.0))[0] < version:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"FAILED: no event for work order {record_id} "
                                     f"at version {version} within {EVENT_TIMEOUT} s")
                self.changed.wait(left)
            return self.seen[record_id][1]


def _world(home: Path) -> tuple[Runtime, int, str]:
    rt = Runtime(Settings.from_env(home=home, database_url=f"sqlite:///{home / 'bench.db'}",
                                   redis_url=None, secret_key="bench-secret"))
    app = compile_bundle(REPO / "examples" / "field-service").app
    assert app is not None, "the reference bundle does not compile"
    publish(rt.engine, app, created_by="bench")
    rt.refresh()
    a = SYSTEM_ACTOR
    region = rt.records.create(a, "region", {"code": "PD", "name": "浦东新区"})
    customer = rt.records.create(a, "customer", {"name": "张伟", "phone": "13800000001",
                                                 "tier": "normal", "region": region["id"]})
    order = rt.records.create(a, "work_order", {
        "title": "空调不制冷", "category": "aircon", "customer": customer["id"],
        "region": region["id"], "location": {"lat": 31.2, "lng": 121.5},
        "contact_phone": "13700000000"})
    add_user(rt.engine, "bench", name="bench", password="bench-pw", roles=["admin"])
    token = create_token(rt.engine, "bench", name="bench").token
    return rt, int(order["id"]), token


def _signed_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=10).text
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the login page"
    res = session.post(f"{base}/login", data={"username": "bench", "password": "bench-pw",
                                              "csrf_token": match.group(1)},
                       allow_redirects=False, timeout=10)
    assert res.status_code == 302, res.text
    return session


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory() as tmp:
        rt, order_id, token = _world(Path(tmp))
        server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        watcher = Watcher(_signed_in(base), f"{base}/live")
        watcher.start()
        api = requests.Session()
        api.headers.update({"Authorization": f"Bearer {token}", "If-Match": "*"})
        url = f"{base}/api/v1/work_order/{order_id}"
        live: list[float] = []
        roundtrip: list[float] = []
        from_send: list[float] = []
        early = 0
        for i in range(args.warmup + args.changes):
            sent = time.perf_counter()
            res = api.patch(url, json={"title": f"空调不制冷 #{i}"}, timeout=30)
            returned = time.perf_counter()
            res.raise_for_status()
            seen = watcher.wait_for(order_id, int(res.json()["row_version"]))
            if i < args.warmup:
                continue
            roundtrip.append((returned - sent) * 1000)
            live.append(max(0.0, seen - returned) * 1000)
            from_send.append((seen - sent) * 1000)
            early += seen < returned
        watcher.response.close()
        server.shutdown()
        rt.close()
    print(f"changes: {len(live)} (after {args.warmup} warm-up), embedded default "
          "(SQLite, inline jobs, in-process broker), threaded WSGI server")
    print(f"{'':22}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, values in (("commit -> /live", live), ("API round trip", roundtrip),
                         ("request sent -> /live", from_send)):
        print(f"{name:22}{statistics.median(values):10.2f}{_pct(values, 0.95):10.2f}"
              f"{max(values):10.2f}")
    print(f"events seen before the API response returned (counted 0 ms): {early}")
    print(f"live_p50_ms={statistics.median(live):.2f} live_p95_ms={_pct(live, 0.95):.2f} "
          f"api_roundtrip_p50_ms={statistics.median(roundtrip):.2f}")


if __name__ == "__main__":
    main()
