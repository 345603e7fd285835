"""The one enforcement point for authorization: actions, row filters and field masks.

Every reader and writer of records — the API, the pages, exports and reports —
asks an :class:`Authorizer` (one per app version, see :func:`authorizer_for`):

* :meth:`Authorizer.can` / :meth:`~Authorizer.require`: may the actor perform
  ``action`` (``read``, ``create``, ``update``, ``delete`` or a flow action) on
  the entity at all? The union of the actor's roles' ``allow`` lists, narrowed
  by an API token's scopes. Default deny: an entity or action no role lists is
  refused; unknown roles grant nothing. The system actor may do everything.
* :meth:`~Authorizer.row_clause` (lists, counts, exports: SQL) and
  :meth:`~Authorizer.row_allowed` (one record: Python) apply the ``rows``
  filters of the roles that grant the action; both come from the same checked
  expression and agree row for row (see :mod:`.sql_filter`). A ``rows_via:
  entity.field`` grant further limits the rows to those some live ``entity``
  record the actor may read links to through ``field`` (a technician's
  customers: those of their own orders): a semi-join in SQL, ``referrers`` in
  Python.
* :meth:`~Authorizer.readable_fields`, :meth:`~Authorizer.writable_fields` and
  :meth:`~Authorizer.mask`: field-level access, sensitive fields included.
  ``mask`` is the one mask every response passes through: it recurses into
  embedded linked records with their own entity's field rules and row filter
  (a linked record the actor may not read is cut to its id).
* :meth:`~Authorizer.filter_clause`: an API ``?filter=`` in SQL, refused on
  unreadable fields, with the row filter of every entity it reads through
  applied at each reference hop.

Field rules, per role that grants the action: ``fields.read`` is a list or
``"*"``; absent, it is every field not marked ``sensitive``. A sensitive field
is readable only through ``"*"`` or by being named. ``fields.hide`` removes
fields. ``fields.write`` (a list or ``"*"``; absent: the role's readable fields)
is intersected with what the role reads, minus ``hide``. System fields (id,
created_at, updated_at, created_by, tags) are always readable and never
writable. Roles add up.

Row filters are compiled once per (role, entity) when the Authorizer is built,
and checked for an SQL form then: a bundle whose filter cannot run in the
database fails at construction (publish time), not on the first request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from ...dsl import ast
from ...dsl.codegen import compile_expression
from ...dsl.compiler import App
from ...dsl.items import USER_ENTITY
from ...dsl.model import EntityDef
from ...dsl.values import coerce_value
from ...errors import EvaluationError, PermissionDenied
from ...lru import LruCache
from ..store.storage import build_metadata, table_name
from .actors import Actor
from .sql_filter import to_sql
from .views import RecordBinder, Resolve, UnresolvedReference

#: The root names row filters use (roles.yaml): the row and the acting user.
RECORD_ROOT = "record"
USER_ROOT = "user"

#: ``referrers(entity, field, id)``: the live ``entity`` records whose reference
#: ``field`` holds ``id`` (for ``rows_via`` grants checked in Python).
Referrers = Callable[[str, str, Any], Iterable[Mapping[str, Any]]]

#: Actions whose field rules decide what may be written.
WRITE_ACTIONS = ("create", "update")


@dataclass(frozen=True)
class RoleGrant:
    """What one role may do with one entity, compiled from its ``permissions`` entry."""

    role: str
    entity: str
    allow: frozenset[str]
    rows: ast.Expr | None
    row_check: Callable[..., Any] | None
    read: frozenset[str]
    write: frozenset[str]
    via: tuple[str, str] | None = None  # rows_via: (entity, reference field)

    @property
    def all_rows(self) -> bool:
        """Whether the grant limits no rows (neither ``rows`` nor ``rows_via``)."""
        return self.rows is None and self.via is None


def scope_allows(scopes: Iterable[str], entity: str, action: str) -> bool:
    """Whether token scopes (``"*"``, ``"work_order:*"``, ``"work_order:read"``,
    ``"*:read"``) permit ``action`` on ``entity``; no scopes = no restriction."""
    scopes = tuple(scopes)
    if not scopes:
        return True
    wanted = {"*", "*:*", f"{entity}:*", f"{entity}:{action}", f"*:{action}"}
    return any(s in wanted for s in scopes)


def _field_sets(entity: EntityDef, spec: Mapping[str, Any]) -> tuple[frozenset, frozenset]:
    """(readable, writable) field names of one role's ``fields`` spec (see module docs)."""
    system = {f.name for f in entity.fields.values() if f.system}
    plain = [f for f in entity.fields.values() if not f.system]
    read_spec, write_spec = spec.get("read"), spec.get("write")
    hide = set(spec.get("hide") or ())
    if read_spec == "*":
        read = {f.name for f in plain}
    elif read_spec is None:
        read = {f.name for f in plain if not f.sensitive}
    else:
        read = set(read_spec) - system
    read -= hide
    if write_spec == "*":
        write = {f.name for f in plain}
    elif write_spec is None:
        write = set(read)
    else:
        write = set(write_spec)
    write = (write & read) - hide - system
    return frozenset(read | system), frozenset(write)


_SAMPLES: dict[str, Any] = {
    "string": "x", "text": "x", "enum": "x", "integer": 1, "decimal": 1.0, "boolean": True,
    "date": date(2000, 1, 1), "datetime": datetime(2000, 1, 1, tzinfo=UTC),
    "duration": timedelta(minutes=1), "geo": {"lat": 0.0, "lng": 0.0}, "list": ["x"],
    "reference": 1, "attachment": [],
}


class Authorizer:
    """Authorization decisions for one compiled app version (immutable, thread-safe).

    Raises UnsupportedFilter (a DslError, with the position in roles.yaml) at
    construction when a row filter has no SQL form.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.entities: dict[str, EntityDef] = {**app.entities, USER_ENTITY: app.user}
        self._file = app.roles.file if app.roles is not None else "roles.yaml"
        self._grants: dict[tuple[str, str], RoleGrant] = {}
        self._cache: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        roles = (app.roles.data.get("roles") or {}) if app.roles is not None else {}
        exprs = app.roles.exprs if app.roles is not None else {}
        for role, spec in roles.items():
            for entity_name, perm in (spec.get("permissions") or {}).items():
                entity = app.entities.get(entity_name)
                if entity is None:
                    continue
                rows = exprs.get(("roles", role, "permissions", entity_name, "rows"))
                check = None if rows is None else compile_expression(
                    rows, [RECORD_ROOT, USER_ROOT], self._file, boolean=True)
                read, write = _field_sets(entity, perm.get("fields") or {})
                via = perm.get("rows_via")
                self._grants[(role, entity_name)] = RoleGrant(
                    role, entity_name, frozenset(perm.get("allow") or ()), rows, check,
                    read, write, tuple(via.split(".", 1)) if via else None)
        self._validate_row_filters()

    def _validate_row_filters(self) -> None:
        """Translate every row filter once, with sample user values, to fail fast."""
        metadata = build_metadata(self.app)
        tables = {name: metadata.tables[table_name(name)] for name in self.app.entities}
        sample = {f.name: _SAMPLES.get(f.kind) for f in self.app.user.fields.values()}
        now = datetime(2000, 1, 1, tzinfo=UTC)
        for grant in self._grants.values():
            if grant.rows is not None:
                to_sql(grant.rows, record_root=RECORD_ROOT, table=tables[grant.entity],
                       tables=tables, entities=self.entities, params={USER_ROOT: sample},
                       now=now, record_entity=grant.entity, file=self._file)

    # -- actions
    def grants(self, actor: Actor, entity: str, action: str) -> tuple[RoleGrant, ...]:
        """The actor's role grants that allow ``action`` on ``entity`` (token scopes applied)."""
        key = ("grants", actor.roles, actor.scopes, entity, action)
        found = self._cache.get(key)
        if found is None:
            found = ()
            if scope_allows(actor.scopes, entity, action):
                found = tuple(g for role in dict.fromkeys(actor.roles)
                              if (g := self._grants.get((role, entity))) is not None
                              and action in g.allow)
            with self._lock:
                self._cache[key] = found
        return found

    def can(self, actor: Actor, entity: str, action: str) -> bool:
        """Whether ``actor`` may perform ``action`` on some ``entity`` records (default deny)."""
        return actor.is_system or bool(self.grants(actor, entity, action))

    def require(self, actor: Actor, entity: str, action: str) -> None:
        """Raise PermissionDenied unless :meth:`can`; the message names only entity and action."""
        if self.can(actor, entity, action):
            return
        if actor.scopes and not scope_allows(actor.scopes, entity, action) and \
                self.can(_without_scopes(actor), entity, action):
            raise PermissionDenied(f"this API token may not {action} {entity} records",
                                   hint=f"use a token with the scope {entity}:{action}")
        raise PermissionDenied(f"you may not {action} {entity} records",
                               hint="ask an administrator for a role that allows it")

    # -- rows
    def row_clause(self, actor: Actor, entity: str, action: str, table: FromClause,
                   tables: Mapping[str, FromClause], *, now: datetime | None = None,
                   strict: bool = False) -> ColumnElement[bool] | None:
        """The SQL condition on ``table`` (the entity's table or an alias) for ``action``.

        None means every row; ``false()`` when no role grants the action. AND it
        into list, count, export and report queries, together with
        ``deleted_at IS NULL``; ``tables`` maps entity names to tables for the
        filters' reference paths. ``now`` is the request time (default: now, UTC).
        ``strict`` as in :func:`~.sql_filter.to_sql`.
        """
        if actor.is_system:
            return None
        grants = self.grants(actor, entity, action)
        if not grants:
            return false()
        if any(g.all_rows for g in grants):
            return None
        user = self.user_record(actor)
        at = now or datetime.now(UTC)
        clauses = []
        for g in grants:
            parts = [] if g.rows is None else [to_sql(
                g.rows, record_root=RECORD_ROOT, table=table, tables=tables,
                entities=self.entities, params={USER_ROOT: user}, now=at, record_entity=entity,
                file=self._file, strict=strict)]
            if g.via is not None:
                parts.append(self._via_clause(actor, g.via, table, tables, at))
            clauses.append(parts[0] if len(parts) == 1 else and_(*parts))
        return clauses[0] if len(clauses) == 1 else or_(*clauses)

    def _via_clause(self, actor: Actor, via: tuple[str, str], table: FromClause,
                    tables: Mapping[str, FromClause], now: datetime) -> ColumnElement[bool]:
        """``rows_via``: the row is linked to by a live ``via`` record the actor may read."""
        source, field = via
        alias = tables[source].alias()
        readable = self.row_clause(actor, source, "read", alias, tables, now=now)
        linked = select(alias.c[field]).where(alias.c.deleted_at.is_(None),
                                              alias.c[field].is_not(None))
        if readable is not None:
            linked = linked.where(readable)
        return table.c.id.in_(linked)

    def row_allowed(self, actor: Actor, entity: str, action: str, record: Mapping[str, Any],
                    *, resolve: Resolve | None = None, now: datetime | None = None,
                    referrers: Referrers | None = None) -> bool:
        """Whether ``actor`` may perform ``action`` on this one record.

        ``record`` is a runtime record (as :func:`~.storage.from_row` returns it;
        references as ids or as resolved dicts). A filter that reads through a
        reference (``record.region.code``) needs ``resolve(entity, id)``
        returning that record or None when missing or soft-deleted (for
        ``user.<reference>`` too); without it such a filter raises
        UnresolvedReference. Evaluation errors raise EvaluationError. A
        ``rows_via`` grant needs ``referrers(entity, field, id)`` returning the live
        records that link to the record (see :data:`Referrers`); without it
        that grant allows nothing.
        """
        if actor.is_system:
            return True
        grants = self.grants(actor, entity, action)
        if not grants:
            return False
        if any(g.all_rows for g in grants):
            return True
        binder = RecordBinder(self.entities, resolve)
        row = binder.bind(self.app.entities[entity], record)
        user = binder.bind(self.app.user, self.user_record(actor))
        at = now or datetime.now(UTC)
        for g in grants:
            if g.via is not None and not self._linked(actor, g.via, record, resolve, at,
                                                      referrers):
                continue
            if g.row_check is None or g.rows is None:
                return True
            try:
                if g.row_check(row, user, at):
                    return True
            except UnresolvedReference:
                raise
            except Exception as exc:
                span = g.rows.span
                raise EvaluationError(f"row filter of role '{g.role}' on {entity} failed: {exc}",
                                      file=self._file, line=span.line,
                                      column=span.column) from exc
        return False

    def _linked(self, actor: Actor, via: tuple[str, str], record: Mapping[str, Any],
                resolve: Resolve | None, now: datetime, referrers: Referrers | None) -> bool:
        """``rows_via`` in Python: some record linking to ``record`` is readable."""
        if referrers is None or record.get("id") is None:
            return False
        source, field = via
        return any(self.row_allowed(actor, source, "read", linking, resolve=resolve, now=now,
                                    referrers=referrers)
                   for linking in referrers(source, field, record["id"]))

    def require_row(self, actor: Actor, entity: str, action: str, record: Mapping[str, Any],
                    *, resolve: Resolve | None = None, now: datetime | None = None,
                    referrers: Referrers | None = None) -> None:
        """:meth:`require` plus :meth:`row_allowed`; raises PermissionDenied."""
        self.require(actor, entity, action)
        if not self.row_allowed(actor, entity, action, record, resolve=resolve, now=now,
                                referrers=referrers):
            raise PermissionDenied(f"you may not {action} this {entity} record")

    def user_record(self, actor: Actor) -> dict[str, Any]:
        """The ``user`` root of row filters: the actor's attributes, defaults filled in."""
        record = actor.as_user_record()
        for f in self.app.user.fields.values():
            if record.get(f.name) is None and f.default is not None:
                record[f.name] = coerce_value(f.kind, f.default, self.app.timezone)
        return record

    # -- fields
    def readable_fields(self, actor: Actor, entity: str) -> frozenset[str]:
        """Fields of ``entity`` the actor may see (empty when it may not read it)."""
        return self._fields(actor, entity, ("read",), "read")

    def writable_fields(self, actor: Actor, entity: str,
                        action: str | None = None) -> frozenset[str]:
        """Fields the actor may set with ``action`` (default: create or update)."""
        return self._fields(actor, entity, (action,) if action else WRITE_ACTIONS, "write")

    def _fields(self, actor: Actor, entity: str, actions: tuple[str, ...],
                mode: str) -> frozenset[str]:
        entity_def = self.app.entities.get(entity)
        if entity_def is None:
            return frozenset()
        if actor.is_system:
            return frozenset(f.name for f in entity_def.fields.values()
                             if mode == "read" or not f.system)
        key = ("fields", mode, actor.roles, actor.scopes, entity, actions)
        found = self._cache.get(key)
        if found is None:
            names: set[str] = set()
            for action in actions:
                for g in self.grants(actor, entity, action):
                    names |= g.read if mode == "read" else g.write
            found = frozenset(names)
            with self._lock:
                self._cache[key] = found
        return found

    def mask(self, actor: Actor, entity: str, record: Mapping[str, Any], *,
             resolve: Resolve | None = None, now: datetime | None = None,
             referrers: Referrers | None = None) -> dict[str, Any]:
        """``record`` (an ``entity`` record) as ``actor`` may see it: the mask of every response.

        Keeps the fields the actor may read (and ``row_version``). A reference
        value carrying an embedded record (a mapping with more than its id) is
        masked the same way, recursively, by its own entity's field rules when
        the actor may read that record (the entity's ``read`` and its row
        filter, checked with ``resolve``, ``now`` and ``referrers`` as in
        :meth:`row_allowed`);
        otherwise it is cut to ``{"id": ...}``: the id the actor may already
        read in the reference field, nothing of the record behind it. A row
        filter that cannot be decided (no resolver, an evaluation error) cuts
        too. The caller checks the row filter of ``record`` itself. Values are
        returned as they are (convert with :func:`~.jsonvalues.json_value`).
        """
        readable = self.readable_fields(actor, entity)
        fields = self.entities[entity].fields if entity in self.entities else {}
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key == "row_version":
                out[key] = value
            elif key in readable:
                f = fields.get(key)
                if f is not None and f.kind == "reference" and isinstance(value, Mapping):
                    value = self._embedded(actor, f.reference or "", value, resolve, now,
                                           referrers)
                out[key] = value
        return out

    def _embedded(self, actor: Actor, target: str, value: Mapping[str, Any],
                  resolve: Resolve | None, now: datetime | None,
                  referrers: Referrers | None) -> dict[str, Any]:
        """An embedded ``target`` record masked for ``actor``, or its id alone (:meth:`mask`)."""
        cut = {"id": value.get("id")}
        if set(value) <= {"id"} or target not in self.app.entities:
            return cut
        try:
            visible = self.row_allowed(actor, target, "read", value, resolve=resolve, now=now,
                                       referrers=referrers)
        except (UnresolvedReference, EvaluationError):
            visible = False
        if not visible:
            return cut
        return self.mask(actor, target, value, resolve=resolve, now=now, referrers=referrers)

    def filter_clause(self, actor: Actor, entity: str, expr: ast.Expr, table: FromClause,
                      tables: Mapping[str, FromClause], *,
                      now: datetime | None = None) -> ColumnElement[bool]:
        """The SQL of a ``?filter=`` condition (rooted at ``entity``) as ``actor`` may run it.

        :meth:`require_filter` first (PermissionDenied on a field the actor
        cannot read, at any hop); then every reference the condition reads
        through applies the target entity's row filter for the actor, in the
        same SQL: a linked record the actor may not read behaves as a missing
        one (its fields are null), so which rows match reveals nothing of it.
        """
        self.require_filter(actor, entity, expr)
        at = now or datetime.now(UTC)

        def hop(target: str, alias: FromClause) -> ColumnElement[bool] | None:
            return self.row_clause(actor, target, "read", alias, tables, now=at)

        return to_sql(expr, record_root=entity, table=table, tables=tables,
                      entities=self.entities, params={}, now=at, record_entity=entity,
                      hop=hop)

    def require_filter(self, actor: Actor, entity: str, expr: ast.Expr) -> None:
        """Refuse a ``?filter=`` (rooted at ``entity``) that reads a field the actor cannot.

        Filtering on a hidden field would reveal it one row at a time. Paths
        through references need the target entity readable and the field among
        its readable fields. Raises PermissionDenied naming the path.
        """
        for path in (n for n in _walk(expr) if isinstance(n, ast.Path)):
            current = entity
            for step in path.steps:
                if step.name not in self.readable_fields(actor, current):
                    raise PermissionDenied(f"you may not filter on {path.dotted()}",
                                           column=step.span.column,
                                           hint="filter on fields you can see")
                f = self.app.entities[current].fields[step.name]
                if f.kind != "reference":
                    break
                current = f.reference or ""


def _walk(node: ast.Expr) -> Iterable[ast.Expr]:
    yield node
    for child in ast.children(node):
        yield from _walk(child)


def _without_scopes(actor: Actor) -> Actor:
    return Actor(actor.user_id, actor.name, actor.roles, actor.attributes, actor.channel)


_AUTHORIZERS: LruCache[tuple[str, str, str], Authorizer] = LruCache(8)


def authorizer_for(app: App) -> Authorizer:
    """The shared Authorizer of an app version (built on first use, a few versions kept)."""
    return _AUTHORIZERS.get_or_build((app.name, app.version, app.digest),
                                     lambda: Authorizer(app))
