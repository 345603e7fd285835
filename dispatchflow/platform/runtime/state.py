"""The running application's state: settings, database, clock, queue, the active version.

A :class:`RuntimeState` follows the active app version: :meth:`refresh` (called per
request, one small query) notices a publish or rollback by another process and
swaps in the new version's compiled app, tables, authorizer and rules engine.
The clock is injected so tests can move time. It holds state only: the services
that act on it (the records service, the hooks of :mod:`.services`) are wired by
the composition root, :class:`dispatchflow.platform.assembly.Runtime`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from ...dsl.compiler import App
from ...dsl.model import FieldDef
from ...dsl.values import coerce_value
from ...errors import DispatchflowError
from ...flows import CompiledFlow, compile_flows
from ...flows.calendar import BusinessCalendar, build_calendars
from ...rules.engine import Engine as RulesEngine
from ..config import Settings
from ..live.broker import Broker, make_broker
from ..live.watch import watch
from ..records.authz import Authorizer
from ..store.db import app_versions, create_system_tables, make_engine, reading
from ..store.storage import build_metadata

if TYPE_CHECKING:
    from ..records.service import RecordService
    from .services import Services
from .queue import JobQueue, make_queue

Clock = Callable[[], datetime]

_MESSAGES = {
    "reference_missing": {"zh": "{entity} {id} 不存在", "en": "{entity} {id} does not exist"},
    "row_filter": {"zh": "您无权以这些值保存该记录",
                   "en": "You may not save a record with these values"},
    "unique_taken": {"zh": "“{value}”已被使用", "en": "\"{value}\" is already taken"},
}


class NoActiveVersion(DispatchflowError):
    """Nothing has been published yet."""


@dataclass(frozen=True)
class _Version:
    number: int
    app: App
    tables: dict[str, Table]
    authz: Authorizer
    rules: RulesEngine
    tz: ZoneInfo


@dataclass(frozen=True)
class VersionedFlows:
    """The compiled flows and calendars of one app version (instances are pinned to one)."""

    number: int
    app: App
    flows: dict[str, CompiledFlow]
    calendars: dict[str, BusinessCalendar]
    rules: RulesEngine


class RuntimeState:
    """See module docs. Build one per process (web app, worker, CLI command) through
    :class:`dispatchflow.platform.assembly.Runtime`, which adds the services."""

    #: The records service for this runtime (set by the composition root).
    records: RecordService
    #: What the runtime calls in the layers above it (set by the composition root).
    services: Services

    def __init__(self, settings: Settings, engine: Engine | None = None,
                 clock: Clock | None = None, derived_work: bool = False) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        #: The engine was made with ``make_engine(..., derived_work=True)`` (a worker).
        self.derived_work = derived_work
        #: Queues whose jobs an events job may run itself, right after its commit,
        #: instead of queueing them: those this worker process serves (``worker``).
        self.serves: frozenset[str] = frozenset()
        create_system_tables(self.engine)
        source: Clock = clock or (lambda: datetime.now(UTC))
        # Always UTC: SQLite keeps datetimes without their offset, so a local time
        # written there would be read back as UTC.
        self.clock: Clock = lambda: source().astimezone(UTC)
        self._version: _Version | None = None
        self._checked_at = 0.0
        self._flows: dict[int, VersionedFlows] = {}
        self._queue: JobQueue | None = None
        #: Where commits that changed records are announced (live updates, :mod:`..live`).
        self.live: Broker = make_broker(settings.redis_url)
        watch(self.engine, self.live)

    @property
    def queue(self) -> JobQueue:
        """Where work goes after a commit: RQ when REDIS_URL is set, else inline."""
        if self._queue is None:
            self._queue = make_queue(self)
        return self._queue

    @queue.setter
    def queue(self, value: JobQueue) -> None:
        self._queue = value

    def close(self) -> None:
        """Release the database pool and the queue's and the broker's connections."""
        if self._queue is not None:
            self._queue.close()
        self.live.close()
        self.engine.dispose()

    def flows_of(self, number: int) -> VersionedFlows:
        """Compiled flows of app version ``number`` (cached; the active one shares its app)."""
        cached = self._flows.get(number)
        if cached is None:
            current = self._current()
            if current.number == number:
                app, rules = current.app, current.rules
            else:
                from ..store.versions import load_app

                app = load_app(self.engine, number)
                rules = RulesEngine(app)
            cached = VersionedFlows(number, app,
                                    compile_flows(app, number, tables=rules.table_outputs),
                                    build_calendars(app.calendars, app.timezone), rules)
            self._flows[number] = cached
        return cached

    def refresh(self, max_age: float = 0.0) -> None:
        """Load the active version if it changed since the last call.

        With ``max_age`` (seconds), a check made less than that long ago is trusted.
        """
        if max_age and self._version is not None and \
                time.monotonic() - self._checked_at < max_age:
            return
        self._checked_at = time.monotonic()
        with reading(self.engine) as conn:
            number = conn.execute(select(app_versions.c.number)
                                  .where(app_versions.c.active.is_(True))).scalar()
        if number is None:
            self._version = None
            return
        if self._version is not None and self._version.number == number:
            return
        from ..store.versions import load_app

        app = load_app(self.engine, number)
        metadata = build_metadata(app)
        tables = {name: metadata.tables[f"e_{name}"] for name in app.entities}
        self._version = _Version(number, app, tables, Authorizer(app), RulesEngine(app),
                                 ZoneInfo(app.timezone))

    def _current(self) -> _Version:
        if self._version is None:
            self.refresh()
        if self._version is None:
            raise NoActiveVersion("no app version is published",
                                  hint="publish one: dispatchflow publish BUNDLE")
        return self._version

    @property
    def app(self) -> App:
        return self._current().app

    @property
    def version_number(self) -> int:
        return self._current().number

    @property
    def tables(self) -> dict[str, Table]:
        return self._current().tables

    @property
    def authz(self) -> Authorizer:
        return self._current().authz

    @property
    def rules(self) -> RulesEngine:
        return self._current().rules

    @property
    def tz(self) -> ZoneInfo:
        return self._current().tz

    def default_value(self, f: FieldDef) -> Any:
        """A field's declared default as a runtime value."""
        return coerce_value(f.kind, f.default, self.app.timezone)

    def message(self, key: str, locale: str | None = None, **values: Any) -> str:
        """A platform message in ``locale`` (default: the app's default locale)."""
        texts = _MESSAGES[key]
        lang = locale if locale in texts else self.app.default_locale
        return texts.get(lang, texts["en"]).format(**values)
