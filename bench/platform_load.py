"""Drive the whole platform with work orders: a fresh PostgreSQL database, the reference
bundle, inline or on RQ workers over a private Redis. Used by ``flows_bench.py``.

:func:`measure` publishes the reference bundle into a new database, creates a
customer and a technician per order (technicians on a grid 40 km apart, so every
order has its own qualified technician), then takes every order through its lifecycle: intake
(rules, flow, SLA clocks, dispatch decision, offer — processed by the queue),
accept, depart, arrive, start, complete with the completion report, confirm,
rating (processed by the queue) until closed. ``clients`` threads play the
people at once (customers filing orders, technicians working their own order,
the dispatcher confirming), as an API server's request threads would; each
order's own actions stay in order. It returns the outbox events processed plus
the actions taken, divided by the wall time from the first intake to the moment
nothing is left to process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "examples" / "field-service"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class LoadResult:
    """Events processed, actions taken and the wall time they took."""

    orders: int
    events: int
    actions: int
    seconds: float

    @property
    def rate(self) -> float:
        return (self.events + self.actions) / self.seconds


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    name = "df_bench_" + secrets.token_hex(4)
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port (FLUSHALL and kills touch nothing else)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="df-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def workers(count: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen]]:
    """``count`` ``dispatchflow worker`` processes with ``env``; killed afterwards."""
    # Each worker in its own process group: its RQ scheduler is a child process that
    # must go with it.
    procs = [subprocess.Popen([sys.executable, "-m", "dispatchflow.cli", "worker"],
                              env={**os.environ, **env}, cwd=REPO, start_new_session=True,
                              stderr=subprocess.DEVNULL)
             for _ in range(count)]
    try:
        yield procs
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


#: Client threads driving the platform (see module docs).
CLIENTS = 4


def measure(n: int, redis_url: str | None = None, worker_count: int = 2,
            clients: int = CLIENTS) -> LoadResult:
    """Take ``n`` orders through their lifecycle (see module docs); inline without Redis."""
    with fresh_database() as url:
        home = tempfile.mkdtemp(prefix="df-bench-home-")
        env = {"DATABASE_URL": url, "DISPATCHFLOW_HOME": home,
               "DISPATCHFLOW_SECRET_KEY": "bench"}
        if redis_url:
            env["REDIS_URL"] = redis_url
        try:
            rt = _runtime(env)
            if redis_url:
                with workers(worker_count, env):
                    return _drive(rt, n, clients)
            return _drive(rt, n, clients)
        finally:
            shutil.rmtree(home, ignore_errors=True)


def _runtime(env: dict[str, str]) -> Any:
    from dispatchflow.dsl.compiler import compile_bundle
    from dispatchflow.platform.assembly import Runtime
    from dispatchflow.platform.config import Settings
    from dispatchflow.platform.store.versions import publish

    rt = Runtime(Settings.from_env(home=Path(env["DISPATCHFLOW_HOME"]),
                                   database_url=env["DATABASE_URL"], secret_key="bench"))
    if "REDIS_URL" in env:
        from dispatchflow.platform.runtime.queue import RQQueue

        rt.queue = RQQueue(env["REDIS_URL"])
    from dispatchflow.platform.assembly.root import warm_up

    app = compile_bundle(REFERENCE).app
    assert app is not None
    publish(rt.engine, app, created_by="bench")
    warm_up(rt)  # as `dispatchflow serve` and `worker` do at start
    return rt


def _drive(rt: Any, n: int, clients: int) -> LoadResult:
    from dispatchflow.platform.records.actors import SYSTEM_ACTOR, Actor
    from dispatchflow.platform.records.files import store_file
    from dispatchflow.platform.runtime.runner import take_action
    from dispatchflow.platform.store.db import outbox

    create = rt.records.create
    # A customer per order (households): no order shares its customer's row with another.
    customers = [create(SYSTEM_ACTOR, "customer", {
        "name": f"压测客户{i}", "tier": "normal", "phone": f"138{i:08d}"})["id"]
        for i in range(n)]
    points = [(20.0 + (i // 40) * 0.4, 100.0 + (i % 40) * 0.4) for i in range(n)]
    techs = [create(SYSTEM_ACTOR, "technician", {
        "name": f"技师{i}", "level": 5, "on_duty": True, "skills": ["aircon"],
        "location": {"lat": lat, "lng": lng}})["id"] for i, (lat, lng) in enumerate(points)]
    # A technician attaches only photos they uploaded: one per technician, made up front.
    photos = {tech: store_file(rt.engine, b"\x89PNG\r\n\x1a\n" + bytes(64),
                               filename="after.png", content_type="image/png",
                               created_by=f"tech{tech}", max_bytes=1 << 20).id
              for tech in techs}
    dispatcher = Actor("bench-dispatcher", roles=("dispatcher",))
    _settle(rt)
    with rt.engine.connect() as conn:
        baseline = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar()

    def file_order(point: tuple[float, float], customer: int) -> int:
        return int(create(SYSTEM_ACTOR, "work_order", {
            "title": "空调不制冷", "category": "aircon", "customer": customer,
            "location": {"lat": point[0], "lng": point[1]}})["id"])

    def work_order(order: int, tech: int) -> int:
        actor = Actor(f"tech{tech}", roles=("technician",), attributes={"technician": tech})
        for action in ("accept", "depart", "arrive", "start_service"):
            take_action(rt, actor, "work_order", order, action)
        take_action(rt, actor, "work_order", order, "complete",
                    {"resolution": "更换电容", "customer_absent": True, "photos": [photos[tech]]})
        return 5

    def close_order(order: int) -> int:
        take_action(rt, dispatcher, "work_order", order, "confirm_completion")
        rt.records.update(SYSTEM_ACTOR, "work_order", order, {"rating": 5},
                          expected_version=None)
        return 1

    with ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        orders = _all(pool, file_order, list(zip(points, customers, strict=True)))
        _wait_for(rt, orders, "offered")
        actions = sum(_all(pool, work_order, list(zip(orders, techs, strict=True))))
        _wait_for(rt, orders, "completed")
        actions += sum(_all(pool, close_order, [(o,) for o in orders]))
        _wait_for(rt, orders, "closed")
        _settle(rt)
        seconds = time.perf_counter() - started
    with rt.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(outbox)
                             .where(outbox.c.processed_at.is_not(None))).scalar()
    return LoadResult(n, int(total) - int(baseline), actions, seconds)


def _all(pool: ThreadPoolExecutor, fn: Callable[..., int],
         calls: Iterable[tuple[Any, ...]]) -> list[int]:
    """``fn(*args)`` for every call on the pool's threads; results in order, errors raised."""
    return [f.result() for f in [pool.submit(fn, *args) for args in calls]]


def _wait_for(rt: Any, orders: list[int], status: str, timeout: float = 600) -> None:
    from dispatchflow.platform.store.db import reading

    table = rt.tables["work_order"]
    deadline = time.monotonic() + timeout
    while True:
        with reading(rt.engine) as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(table.c.id.in_(orders))
                                .where(table.c.status != status)).scalar()
        if not left:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} orders did not reach {status} in {timeout} s")
        time.sleep(0.02)


def _settle(rt: Any, timeout: float = 600) -> None:
    from dispatchflow.platform.store.db import dispatch_rounds, outbox, reading

    deadline = time.monotonic() + timeout
    while True:
        with reading(rt.engine) as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                .where(outbox.c.processed_at.is_(None))
                                .where(outbox.c.failed_at.is_(None))).scalar()
            rounds = conn.execute(sa.select(sa.func.count()).select_from(dispatch_rounds)
                                  .where(dispatch_rounds.c.status == "pending")).scalar()
        if not left and not rounds:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} events still unprocessed after {timeout} s")
        time.sleep(0.02)
