"""Integration fixtures: real PostgreSQL databases, a private Redis, RQ worker processes.

- :func:`fresh_database` makes a new PostgreSQL database per call (``df_it_<random>``
  on 127.0.0.1:5432, user ``postgres``), dropped ``WITH (FORCE)`` after the test. A
  PostgreSQL that is down FAILS the test with the command that starts it: these
  tests are the proof that nothing is lost, they must never silently not run.
- :func:`private_redis` starts a ``redis-server`` of its own on a free port (tests
  that ``FLUSHALL`` or kill things never touch the shared 127.0.0.1:6379).
- :func:`processes` starts ``dispatchflow worker`` / ``dispatchflow scheduler``
  subprocesses with the environment a production worker gets, and kills what is
  left at teardown.
- :func:`wait_quiescent` waits until nothing is left to do (no unprocessed outbox
  event, no undecided dispatch round, RQ queues empty, no job running on a live
  worker) and fails loudly, with diagnostics, when that does not happen in time.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from dispatchflow.platform.runtime.queue import QUEUES
from dispatchflow.platform.store.db import dispatch_rounds, outbox

PG_HOST = "127.0.0.1:5432"
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}/postgres"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REPO = Path(__file__).resolve().parents[2]

#: Seconds one settle may take before the test fails with diagnostics.
SETTLE_TIMEOUT = 120.0

#: Seconds after which a transaction left idle while others wait for its locks fails a
#: settle at once (no job keeps a transaction open without running statements).
STUCK_AFTER = 30.0


# ---------------------------------------------------------------- PostgreSQL

class Databases:
    """Creates ``df_it_<random>`` databases and drops them ``WITH (FORCE)`` in :meth:`close`."""

    def __init__(self) -> None:
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []
        try:
            with self.admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            self.admin.dispose()
            pytest.fail(f"PostgreSQL is not reachable at {PG_HOST} (user postgres, trust): "
                        f"{exc.orig}\nstart it with: {PG_START}", pytrace=False)

    def make(self) -> str:
        name = f"df_it_{secrets.token_hex(6)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            # Durability against a PostgreSQL crash is not what these tests check; not
            # waiting for each commit's WAL flush makes them several times faster.
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        self.made.append(name)
        return f"postgresql+psycopg://postgres@{PG_HOST}/{name}"

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def _databases() -> Iterator[Callable[[], str]]:
    dbs = Databases()
    try:
        yield dbs.make
    finally:
        dbs.close()


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """``fresh_database()`` -> URL of a new, empty PostgreSQL database (dropped after)."""
    yield from _databases()


@pytest.fixture(scope="module")
def module_database() -> Iterator[Callable[[], str]]:
    """Like :func:`fresh_database`, for module-scoped fixtures (dropped after the module)."""
    yield from _databases()


# ---------------------------------------------------------------- Redis

@dataclass
class RedisServer:
    """A private ``redis-server`` process (see module docs)."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        from redis import Redis

        return Redis.from_url(self.url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A ``redis-server`` on a free port in a temp dir, killed after the test."""
    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    last_error = ""
    for _ in range(5):  # the free port may be taken between probe and bind
        port = _free_port()
        try:
            proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir),
                 "--logfile", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            pytest.fail("redis-server is not installed: apt-get install -y redis-server",
                        pytrace=False)
        server = RedisServer(port, proc, log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.client().ping():
                    break
            except Exception as exc:  # noqa: BLE001 - not up yet
                last_error = str(exc)
            time.sleep(0.05)
        if proc.poll() is None:
            try:
                yield server
            finally:
                proc.kill()
                proc.wait(timeout=10)
            return
        last_error = log.read_text(errors="replace") if log.exists() else last_error
    pytest.fail(f"could not start a private redis-server: {last_error[-2000:]}", pytrace=False)


# ---------------------------------------------------------------- subprocesses

@dataclass
class Proc:
    """One ``dispatchflow`` subprocess and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        data = self.log.read_text(errors="replace") if self.log.exists() else ""
        return data[-chars:]


@dataclass
class Processes:
    """Starts workers and schedulers for one database + Redis; see :func:`processes`."""

    database_url: str
    redis_url: str
    home: Path
    started: list[Proc] = field(default_factory=list)
    killed: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                   DISPATCHFLOW_HOME=str(self.home),
                   DISPATCHFLOW_SECRET_KEY="integration-test-secret-key",
                   PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
        return env

    def _start(self, name: str, args: list[str]) -> Proc:
        log = self.home / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "dispatchflow.cli", *args],
                                env=self.env(), cwd=str(self.home), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        started = Proc(name, proc, log)
        self.started.append(started)
        return started

    def start_worker(self) -> Proc:
        """A ``dispatchflow worker`` serving every queue, named ``w<n>``."""
        name = f"w{sum(p.name.startswith('w') for p in self.started)}-{secrets.token_hex(3)}"
        return self._start(name, ["worker", "--queues", ",".join(QUEUES), "--name", name])

    def start_workers(self, n: int, timeout: float = 90.0) -> list[Proc]:
        """``n`` workers, returned once each has registered with Redis (ready for jobs)."""
        procs = [self.start_worker() for _ in range(n)]
        self.wait_ready(procs, timeout)
        return procs

    def wait_ready(self, procs: list[Proc], timeout: float = 90.0) -> None:
        from redis import Redis

        redis = Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            while not all(redis.exists(f"rq:worker:{p.name}") for p in procs):
                if any(not p.alive() for p in procs) or time.monotonic() > deadline:
                    pytest.fail("workers did not start:\n" + self.logs(), pytrace=False)
                time.sleep(0.05)
        finally:
            redis.close()

    def start_scheduler(self, *extra: str) -> Proc:
        """A ``dispatchflow scheduler`` (wall clock), named ``s<n>``."""
        name = f"s{sum(p.name.startswith('s') for p in self.started)}"
        return self._start(name, ["scheduler", *extra])

    def kill9(self, proc: Proc) -> None:
        """SIGKILL to the process alone (a crash, the OOM killer): no cleanup, no goodbye.

        Its children (a worker's forked RQ scheduler) live on, as they would.
        """
        self.killed.add(proc.name)
        if proc.alive():
            os.kill(proc.process.pid, signal.SIGKILL)
        proc.process.wait(timeout=10)

    def stop(self, proc: Proc) -> None:
        """SIGTERM (an orderly shutdown), SIGKILL when it does not stop in 10 s."""
        if proc.alive():
            proc.process.terminate()
            try:
                proc.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait(timeout=10)

    def workers(self) -> list[Proc]:
        return [p for p in self.started if p.name.startswith("w")]

    def live_worker_names(self) -> set[str]:
        return {p.name for p in self.workers() if p.alive()}

    def unexpected_deaths(self) -> list[Proc]:
        return [p for p in self.started if not p.alive() and p.name not in self.killed
                and p.name.startswith("w")]

    def children(self, proc: Proc) -> list[int]:
        """Live processes ``proc`` started (its process group, without itself)."""
        return [pid for pid in _process_group(proc.process.pid) if pid != proc.process.pid]

    def logs(self) -> str:
        out = []
        for p in self.started:
            state = "alive" if p.alive() else f"exit {p.process.returncode}"
            children = self.children(p)
            if children:
                state += f"; its children still alive: {children}"
            out.append(f"---- {p.name} (pid {p.process.pid}, {state}) ----\n{p.tail()}")
        return "\n".join(out)

    def close(self) -> None:
        """Kill every process started, with whatever they started."""
        for proc in self.started:
            try:
                os.killpg(proc.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.process.wait(timeout=10)


def _process_group(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return sorted(out)


@pytest.fixture
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Callable[[str, str], Processes]]:
    """``processes(database_url, redis_url)`` -> a :class:`Processes`; all killed after."""
    made: list[Processes] = []

    def make(database_url: str, redis_url: str) -> Processes:
        made.append(Processes(database_url, redis_url, tmp_path_factory.mktemp("home")))
        return made[-1]

    try:
        yield make
    finally:
        for p in made:
            p.close()


# ---------------------------------------------------------------- quiescence

def db_backlog(engine: Any) -> dict[str, Any]:
    """What the database still holds to do: unprocessed events, undecided rounds, parked ones."""
    with engine.connect() as conn:
        unprocessed = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.processed_at.is_(None))
            .where(outbox.c.failed_at.is_(None))).scalar_one()
        failed = conn.execute(select(outbox.c.id, outbox.c.entity, outbox.c.record_id,
                                     outbox.c.event, outbox.c.attempts, outbox.c.last_error)
                              .where(outbox.c.failed_at.is_not(None))
                              .order_by(outbox.c.id).limit(5)).all()
        rounds = conn.execute(select(func.count()).select_from(dispatch_rounds)
                              .where(dispatch_rounds.c.status == "pending")).scalar_one()
    return {"unprocessed": int(unprocessed), "pending_rounds": int(rounds),
            "failed": [tuple(r) for r in failed]}


def _backlog_detail(engine: Any) -> str:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.entity, outbox.c.record_id,
                                   outbox.c.event, outbox.c.attempts, outbox.c.last_error)
                            .where(outbox.c.processed_at.is_(None))
                            .order_by(outbox.c.id).limit(10)).all()
        rounds = conn.execute(select(dispatch_rounds.c.id, dispatch_rounds.c.record_id,
                                     dispatch_rounds.c.attempt)
                              .where(dispatch_rounds.c.status == "pending").limit(10)).all()
        sessions = conn.execute(text(
            "SELECT pid, state, wait_event_type, wait_event, now() - xact_start AS xact_age,"
            " pg_blocking_pids(pid) AS blocked_by, left(query, 160) AS query"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() ORDER BY xact_start NULLS LAST")).all()
    return ("unprocessed events (id, entity, record, event, attempts, last error):\n  "
            + "\n  ".join(map(str, rows)) + "\npending rounds (id, record, attempt):\n  "
            + "\n  ".join(map(str, rounds))
            + "\ndatabase sessions (pid, state, wait, xact age, blocked by, query):\n  "
            + "\n  ".join(map(str, sessions))
            + "".join(f"\nsession {r.pid} has been idle in a transaction for {r.xact_age}: "
                      "its client stopped mid-transaction but its socket is still open (a "
                      "killed worker whose socket lives on in a forked child?), so its row "
                      "locks are never released" for r in sessions
                      if r.state == "idle in transaction" and r.xact_age is not None
                      and r.xact_age.total_seconds() > 30))


def _stuck_sessions(engine: Any, older_than: float) -> list[int]:
    """Sessions idle in a transaction for ``older_than`` s that other sessions wait for."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT pid, extract(epoch FROM now() - xact_start) AS age,"
            " pg_blocking_pids(pid) AS blocked_by, state"
            " FROM pg_stat_activity WHERE datname = current_database()")).all()
    blockers = {b for r in rows for b in (r.blocked_by or [])}
    return [r.pid for r in rows if r.state == "idle in transaction" and r.pid in blockers
            and r.age is not None and float(r.age) > older_than]


def _running_jobs(redis: Any) -> str:
    from rq import Worker

    out = []
    for w in Worker.all(connection=redis):
        job = w.get_current_job()
        out.append(f"{w.name} {w.get_state()}: "
                   f"{job.args if job is not None else None} since "
                   f"{job.started_at if job is not None else None}")
    return "rq workers:\n  " + "\n  ".join(out)


def rq_backlog(redis: Any, live_workers: set[str]) -> dict[str, Any]:
    """Queued, scheduled (retry) and running jobs; jobs of dead workers do not count."""
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    out: dict[str, Any] = {"queued": 0, "scheduled": 0, "running": 0, "failed_jobs": []}
    for name in QUEUES:
        queue = Queue(name, connection=redis)
        out["queued"] += queue.count
        out["scheduled"] += ScheduledJobRegistry(queue=queue).count
        for job_id in StartedJobRegistry(queue=queue).get_job_ids(cleanup=False):
            try:
                job = Job.fetch(job_id, connection=redis)
            except NoSuchJobError:  # finished meanwhile (results are not kept) or lost
                job = None
            if job is None or job.worker_name in live_workers or not job.worker_name:
                out["running"] += 1
        for job_id in FailedJobRegistry(queue=queue).get_job_ids(cleanup=False)[:3]:
            try:
                job = Job.fetch(job_id, connection=redis)
                info = (job.latest_result().exc_string if job.latest_result() else "")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                info = repr(exc)
            out["failed_jobs"].append((name, job_id, (info or "")[-1500:]))
    return out


def wait_quiescent(engine: Any, *, redis: Any = None, procs: Processes | None = None,
                   timeout: float = SETTLE_TIMEOUT,
                   nudge: Callable[[], None] | None = None, nudge_every: float = 2.0) -> None:
    """Wait until nothing is left to do (see module docs); fail with diagnostics if not.

    Quiescence must be seen twice in a row (a job between its dequeue and its
    registration as started is in neither place). A parked (failed) event fails
    at once: the scenario never makes one. ``nudge`` (e.g. a sweeping tick) is
    called when work is left in the database but none in Redis (it was lost), or
    when nothing has moved for ``nudge_every`` seconds.
    """
    started = time.monotonic()
    deadline = started + timeout
    moved_at, last_nudge, last_stuck_check = started, 0.0, started
    calm = lost = 0
    signature: tuple[Any, ...] = ()
    last: dict[str, Any] = {}
    while True:
        last = db_backlog(engine)
        if last["failed"]:
            pytest.fail("events were parked after failing:\n  "
                        + "\n  ".join(map(str, last["failed"]))
                        + (f"\n{procs.logs()}" if procs else ""), pytrace=False)
        if procs is not None and procs.unexpected_deaths():
            pytest.fail("a worker died on its own:\n" + procs.logs(), pytrace=False)
        db_busy = bool(last["unprocessed"] or last["pending_rounds"])
        rq_busy = False
        if redis is not None:
            last.update(rq_backlog(redis, procs.live_worker_names() if procs else set()))
            rq_busy = bool(last["queued"] or last["scheduled"] or last["running"])
        calm = 0 if db_busy or rq_busy else calm + 1
        if calm >= 2:
            return
        now = time.monotonic()
        current = (last["unprocessed"], last["pending_rounds"], last.get("running"))
        if current != signature:
            signature, moved_at = current, now
        lost = lost + 1 if db_busy and not rq_busy else 0
        if nudge is not None and now - last_nudge >= 1.0 and (
                lost >= 2 or now - moved_at >= nudge_every):
            nudge()
            last_nudge = now
        stuck: list[int] = []
        if now - last_stuck_check >= 5.0:
            stuck, last_stuck_check = _stuck_sessions(engine, STUCK_AFTER), now
        if now > deadline or stuck:
            detail = _backlog_detail(engine)
            if redis is not None:
                detail += "\n" + _running_jobs(redis)
            what = (f"database sessions {stuck} hold locks in a transaction nobody finishes"
                    if stuck else f"the system did not become quiescent in {timeout:.0f} s")
            pytest.fail(f"{what}: {last}\n{detail}\n{procs.logs() if procs else ''}",
                        pytrace=False)
        time.sleep(0.02 if calm else 0.05)


@pytest.fixture
def quiescence() -> Callable[..., None]:
    """:func:`wait_quiescent`, for test modules (a conftest is not imported by name)."""
    return wait_quiescent


@pytest.fixture
def backlog() -> Any:
    """``backlog.db(engine)`` and ``backlog.rq(redis, live_worker_names)``: what is left."""
    from types import SimpleNamespace

    return SimpleNamespace(db=db_backlog, rq=rq_backlog)
