"""The running application: settings, database, the active app version and its services.

A :class:`Runtime` follows the active app version: :meth:`refresh` (called per
request, one small query) notices a publish or rollback by another process and
swaps in the new version's compiled app, tables, authorizer and rules engine.
The clock is injected so tests can move time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from ..dsl.compiler import App
from ..dsl.model import FieldDef
from ..dsl.values import coerce_value
from ..errors import DispatchflowError
from ..rules.engine import Engine as RulesEngine
from .authz import Authorizer
from .config import Settings
from .db import app_versions, create_system_tables, make_engine
from .records import RecordService
from .storage import build_metadata

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


class Runtime:
    """See module docs. Build one per process (web app, worker, CLI command)."""

    def __init__(self, settings: Settings, engine: Engine | None = None,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        create_system_tables(self.engine)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self._version: _Version | None = None
        self.records = RecordService(self)

    def refresh(self) -> None:
        """Load the active version if it changed since the last call."""
        with self.engine.connect() as conn:
            number = conn.execute(select(app_versions.c.number)
                                  .where(app_versions.c.active.is_(True))).scalar()
        if number is None:
            self._version = None
            return
        if self._version is not None and self._version.number == number:
            return
        from .versions import load_app

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
