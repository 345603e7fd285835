"""Published app versions: publish, list, load, roll back.

A published version is an immutable row of ``df_app_versions``: the bundle's
sources ({path: text}), their digest, the app name and bundle version, who
published it and when. Exactly one version is active; the runtime serves the
active one (:func:`load_app`), flow instances keep the version they started on
(``load_app(engine, number)``).

Publishing stores the sources as the next number, migrates the entity tables
(:mod:`.migrate`) and activates the version in one transaction: either all of
it happens or none. Publishing what is already active changes nothing.

Rollback activates an earlier version and migrates its tables **additively
only**: columns and tables added by later versions stay (with their data),
wider column types stay wide, indexes follow the version. Data is never lost by
a rollback; the next publish that no longer declares those columns lists their
drops as destructive steps. A rollback is refused only when additive migration
is impossible (a column's live type cannot hold the old version's values, or a
restored unique constraint meets duplicates).

Publish and rollback also write an audit row (entity ``app_version``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ...dsl.compiler import App, compile_sources
from ...dsl.diagnostics import render_text
from ...errors import BundleError, DispatchflowError
from . import migrate
from .db import app_versions, audit_log
from .migrate import MigrationPlan
from .storage import build_metadata

#: Audit-log entity name of publish and rollback rows.
AUDIT_ENTITY = "app_version"


class VersionError(DispatchflowError):
    """No such app version, or no active version yet."""


@dataclass(frozen=True)
class VersionInfo:
    """One row of ``df_app_versions`` without its sources. ``created_at`` is aware UTC."""

    number: int
    app_name: str
    bundle_version: str
    digest: str
    created_at: datetime
    created_by: str | None
    active: bool
    note: str | None


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did.

    ``number`` is the new version's number; when ``unchanged`` it is the active
    version's, and after a dry run the number the version would get.
    ``applied`` is True only when a version was stored and its tables migrated.
    """

    number: int
    plan: MigrationPlan
    applied: bool
    unchanged: bool


_CACHE: dict[str, App] = {}
_CACHE_LOCK = threading.Lock()


def _remember(app: App) -> None:
    with _CACHE_LOCK:
        _CACHE[app.digest] = app


def clear_cache() -> None:
    """Forget the compiled apps kept by :func:`load_app` (tests, reloads)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _info(row: Any) -> VersionInfo:
    created = row.created_at
    if created.tzinfo is None:  # SQLite hands back naive datetimes; we stored UTC
        created = created.replace(tzinfo=UTC)
    return VersionInfo(row.number, row.app_name, row.bundle_version, row.digest,
                       created.astimezone(UTC), row.created_by, bool(row.active), row.note)


_INFO_COLUMNS = [c for c in app_versions.c if c.name != "sources"]


def _lock(conn: Connection) -> None:
    """Serialise publishers (SQLite already holds its write lock: BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE df_app_versions IN SHARE ROW EXCLUSIVE MODE")


def _active_in(conn: Connection) -> VersionInfo | None:
    row = conn.execute(select(*_INFO_COLUMNS).where(app_versions.c.active.is_(True))
                       .order_by(app_versions.c.number.desc())).first()
    return None if row is None else _info(row)


def _audit(conn: Connection, number: int, action: str, actor: str | None, at: datetime,
           changes: dict[str, Any]) -> None:
    conn.execute(insert(audit_log).values(entity=AUDIT_ENTITY, record_id=number, action=action,
                                          actor=actor, at=at, changes=changes,
                                          version_number=number))


def _activate(conn: Connection, number: int) -> None:
    conn.execute(update(app_versions).where(app_versions.c.active.is_(True))
                 .values(active=False))
    conn.execute(update(app_versions).where(app_versions.c.number == number)
                 .values(active=True))


def publish(engine: Engine, source: App, *, created_by: str | None, dry_run: bool = False,
            allow_destructive: bool = False, note: str | None = None,
            now: datetime | None = None) -> PublishResult:
    """Store ``source`` as the next version, migrate its tables and activate it, atomically.

    When ``source.digest`` equals the active version's, nothing is created and
    the result says ``unchanged``. ``dry_run`` returns the plan and changes
    nothing. Raises :class:`~.migrate.DestructiveChangeRefused` (carrying the
    plan) when the migration would delete data and ``allow_destructive`` is
    False, and :class:`~.migrate.MigrationError` when a step fails; in both cases
    nothing is stored. ``now`` (aware) defaults to the current UTC time.
    """
    if dry_run:
        with engine.connect() as conn:
            active = _active_in(conn)
            number = _next_number(conn)
            plan = migrate.plan(conn, source)
        unchanged = active is not None and active.digest == source.digest
        return PublishResult(active.number if unchanged and active else number, plan,
                             False, unchanged)
    at = _now(now)
    with migrate.migration_transaction(engine) as conn:
        _lock(conn)
        active = _active_in(conn)
        plan = migrate.plan(conn, source)
        if active is not None and active.digest == source.digest:
            return PublishResult(active.number, plan, False, True)
        if plan.destructive_steps and not allow_destructive:
            raise migrate.DestructiveChangeRefused(plan)
        number = _next_number(conn)
        conn.execute(insert(app_versions).values(
            number=number, app_name=source.name, bundle_version=source.version,
            digest=source.digest, sources=dict(source.sources), created_at=at,
            created_by=created_by, active=False, note=note))
        migrate.apply_in(conn, plan)
        _activate(conn, number)
        _audit(conn, number, "publish", created_by, at, {
            "previous": active.number if active else None,
            "steps": [s.description for s in plan.steps], "note": note})
    _remember(source)
    return PublishResult(number, plan, True, False)


def _next_number(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(app_versions.c.number), 0)))
               .scalar_one()) + 1


def list_versions(engine: Engine) -> list[VersionInfo]:
    """Every published version, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_INFO_COLUMNS).order_by(app_versions.c.number)).all()
    return [_info(r) for r in rows]


def active_version(engine: Engine) -> VersionInfo | None:
    """The active version, or None before the first publish."""
    with engine.connect() as conn:
        return _active_in(conn)


def get_version(engine: Engine, number: int) -> VersionInfo:
    """Version ``number``; raises :class:`VersionError` if there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(*_INFO_COLUMNS)
                           .where(app_versions.c.number == number)).first()
    if row is None:
        raise VersionError(f"there is no app version {number}",
                           hint="'dispatchflow versions' lists the published versions")
    return _info(row)


def load_app(engine: Engine, number: int | None = None) -> App:
    """The compiled App of version ``number`` (default: the active one).

    Compiled Apps are kept in-process by digest, so loading a version again (or
    the one just published here) costs one query. Raises :class:`VersionError`
    when there is no such version or nothing is published yet, and
    :class:`~dispatchflow.errors.BundleError` when stored sources no longer compile.
    """
    query = select(app_versions.c.number, app_versions.c.digest)
    if number is None:
        query = query.where(app_versions.c.active.is_(True))
    else:
        query = query.where(app_versions.c.number == number)
    with engine.connect() as conn:
        row = conn.execute(query).first()
        if row is None:
            if number is None:
                raise VersionError("no app version is active yet",
                                   hint="publish a bundle first: dispatchflow publish BUNDLE")
            raise VersionError(f"there is no app version {number}",
                               hint="'dispatchflow versions' lists the published versions")
        with _CACHE_LOCK:
            cached = _CACHE.get(row.digest)
        if cached is not None:
            return cached
        sources = conn.execute(select(app_versions.c.sources)
                               .where(app_versions.c.number == row.number)).scalar_one()
    result = compile_sources(dict(sources))
    if result.app is None:
        raise BundleError(f"stored app version {row.number} does not compile:\n"
                          + render_text(result.diagnostics), result.diagnostics,
                          hint="publish a corrected bundle or roll back to another version")
    with _CACHE_LOCK:
        _CACHE.setdefault(row.digest, result.app)
        return _CACHE[row.digest]


def rollback(engine: Engine, number: int, *, created_by: str | None,
             now: datetime | None = None) -> VersionInfo:
    """Activate version ``number`` again; its tables are migrated additively only.

    Nothing is dropped or narrowed: columns and tables added by later versions
    stay with their data (see the module docstring). Activating the active
    version is a no-op. Raises :class:`VersionError` for an unknown number and
    :class:`~.migrate.MigrationError` when additive migration is impossible
    (nothing changes then).
    """
    target = get_version(engine, number)
    if target.active:
        return target
    app = load_app(engine, number)
    at = _now(now)
    with migrate.migration_transaction(engine) as conn:
        _lock(conn)
        previous = _active_in(conn)
        try:
            plan = migrate.plan_for_metadata(conn, build_metadata(app)).additive_only()
            migrate.apply_in(conn, plan)
        except migrate.MigrationError as exc:
            raise migrate.MigrationError(
                f"cannot roll back to version {number}: {exc.message}", hint=exc.hint) from exc
        _activate(conn, number)
        _audit(conn, number, "rollback", created_by, at, {
            "previous": previous.number if previous else None,
            "steps": [s.description for s in plan.steps]})
    return get_version(engine, number)
