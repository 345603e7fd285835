"""Who receives a notification: its ``to:`` entries resolved to users and addresses.

Entries, as ``notifications/*.yaml`` writes them:

* ``{role: R}``: every active user with role R who may **read this record**: the
  role set's ``read`` permission and row filter decide, through the one
  :class:`~dispatchflow.platform.records.authz.Authorizer` (a dispatcher of region PD is
  not told about an order in region JA).
* ``{user: login}``: that active user.
* ``{field: entity.path}``: the value of the path. A reference (e.g. to a
  ``technician``) means the users linked to that record by a ``user_fields``
  reference of ``roles.yaml`` (``technician: 12``); a string with an ``@`` is an
  e-mail address; another string is a user id. Lists give each element.
* ``{customer: true}``: the users linked to the record's customer (its
  ``customer`` reference, or the record itself on a customer notification); when
  no user is linked, the customer record's ``email`` field if it has one.

A user's e-mail address is the ``email`` attribute, the message language the
``locale`` attribute (else the app's default locale). Recipients are deduplicated
by user (or address), in the order the entries list them.

An address must be exactly one plain address (:mod:`.addresses`): a value such as
``a@x.com, b@y.com`` is refused with a logged reason, and the e-mail channel plans
a ``suppressed`` row carrying it, so the record's history says who was not told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ...dsl import ast
from ...dsl import types as T
from ...dsl.codegen import compile_expression
from ...dsl.compiler import App
from ...forms.messages import normalize_locale
from ..records.users import actor_from_row
from ..records.views import RecordView, RefView
from ..store.db import users
from .addresses import refusal, single_address

if TYPE_CHECKING:
    from ..records.authz import Authorizer

Resolve = Callable[[str, Any], "Mapping[str, Any] | None"]

log = logging.getLogger(__name__)

#: The user attribute holding an e-mail address, and the one holding a language.
EMAIL_ATTRIBUTE = "email"
LOCALE_ATTRIBUTE = "locale"

#: The record field a ``customer: true`` entry follows, and the customer's e-mail field.
CUSTOMER_FIELD = "customer"
CUSTOMER_EMAIL_FIELD = "email"


@dataclass(frozen=True)
class Recipient:
    """One person (or bare address) to notify: ``user_id`` or ``email`` or both.

    ``refused`` says why an address found for the recipient is not used (then
    ``email`` is None).
    """

    user_id: str | None
    name: str
    email: str | None
    locale: str
    refused: str | None = None

    @property
    def key(self) -> str:
        """What identifies the recipient in delivery rows: the user id, else the address
        (the refused value for a bare address that was refused)."""
        if self.user_id or self.email:
            return self.user_id or self.email or ""
        return f"refused:{self.name}"[:320] if self.refused else ""


@dataclass(frozen=True)
class FieldTarget:
    """A compiled ``{field: ...}`` entry: the expression and the type it yields."""

    fn: Callable[..., Any]
    type: T.Type


def compile_field_target(expr: ast.Expr, entity: str, file: str) -> FieldTarget:
    """Compile a checked ``field`` path once (rooted at ``entity``)."""
    return FieldTarget(compile_expression(expr, [entity], file), expr.type or T.T_ERROR)


class RecipientResolver:
    """Resolves ``to:`` entries for one record inside the caller's transaction.

    Users are read once per resolver (one query) and matched in Python.
    """

    def __init__(self, conn: Connection, app: App, authz: Authorizer, resolve: Resolve,
                 now: datetime) -> None:
        self.conn, self.app, self.authz, self.resolve, self.now = conn, app, authz, resolve, now
        self._users: list[Any] | None = None

    def users(self) -> list[Any]:
        """Active users (rows of ``df_users``), by id."""
        if self._users is None:
            self._users = list(self.conn.execute(
                select(users).where(users.c.active.is_(True)).order_by(users.c.id)))
        return self._users

    def recipient(self, row: Any) -> Recipient:
        attrs = dict(row.attributes or {})
        email = attrs.get(EMAIL_ATTRIBUTE)
        address = single_address(email) if email else None
        refused = refusal(email, f"user '{row.id}': the e-mail attribute") \
            if email and address is None else None
        if refused:
            log.warning("notification recipient: %s", refused)
        return Recipient(row.id, row.name, address,
                         normalize_locale(attrs.get(LOCALE_ATTRIBUTE),
                                          self.app.default_locale), refused)

    def bare_address(self, value: Any, name: str, whose: str) -> list[Recipient]:
        """A recipient without a user account: ``value`` if it is one address."""
        address = single_address(value)
        if address is not None:
            return [Recipient(None, name, address, self.app.default_locale)]
        reason = refusal(value, whose)
        log.warning("notification recipient: %s", reason)
        return [Recipient(None, str(value), None, self.app.default_locale, reason)]

    def resolve_all(self, entries: Iterable[Mapping[str, Any]], entity: str,
                    record: Mapping[str, Any], view: RecordView,
                    fields: Mapping[int, FieldTarget]) -> list[Recipient]:
        """Every recipient of ``entries`` for ``record`` (``view``: the bound record)."""
        found: dict[str, Recipient] = {}
        for i, entry in enumerate(entries):
            if "role" in entry:
                people = self.by_role(str(entry["role"]), entity, record)
            elif "user" in entry:
                people = self.by_user_id(str(entry["user"]))
            elif "field" in entry and i in fields:
                target = fields[i]
                people = self.by_value(target.fn(view, self.now), target.type)
            elif entry.get("customer"):
                people = self.customer_of(entity, view)
            else:
                people = []
            for person in people:
                found.setdefault(person.key, person)
        return [r for r in found.values() if r.key]

    def by_role(self, role: str, entity: str, record: Mapping[str, Any]) -> list[Recipient]:
        """Active users with ``role`` who may read ``record`` (action and row filter)."""
        out = []
        for row in self.users():
            if role not in (row.roles or ()):
                continue
            actor = actor_from_row(row, "notify")
            if self.authz.can(actor, entity, "read") and self.authz.row_allowed(
                    actor, entity, "read", record, resolve=self.resolve, now=self.now):
                out.append(self.recipient(row))
        return out

    def by_user_id(self, user_id: str) -> list[Recipient]:
        return [self.recipient(row) for row in self.users() if row.id == user_id]

    def linked_to(self, target: str, record_id: Any) -> list[Recipient]:
        """Users whose ``user_fields`` reference to entity ``target`` holds ``record_id``."""
        links = [f.name for f in self.app.user.fields.values()
                 if f.kind == "reference" and f.reference == target]
        out = []
        for row in self.users():
            attrs = row.attributes or {}
            if any(_same_id(attrs.get(name), record_id) for name in links):
                out.append(self.recipient(row))
        return out

    def by_value(self, value: Any, type_: T.Type) -> list[Recipient]:
        """Recipients named by a field's value (see module docs)."""
        if value is None:
            return []
        if isinstance(value, list | tuple):
            elem = type_.elem or T.T_ERROR
            return [r for v in value for r in self.by_value(v, elem)]
        entity = type_.entity if type_.kind == T.ENTITY else None
        if entity is None and isinstance(value, RefView):
            entity = value.target
        if entity is not None:
            rid = value.get("id") if isinstance(value, Mapping) else value
            return self.linked_to(entity, rid)
        text = str(value).strip()
        if "@" in text:
            return self.bare_address(text, text, "the field value")
        return self.by_user_id(text)

    def customer_of(self, entity: str, view: RecordView) -> list[Recipient]:
        """The users linked to the record's customer, else the customer's e-mail field."""
        entity_def = self.app.entities[entity]
        target, customer = None, None
        f = entity_def.fields.get(CUSTOMER_FIELD)
        if f is not None and f.kind == "reference":
            target, customer = f.reference, view.get(CUSTOMER_FIELD)
        elif entity == CUSTOMER_FIELD:
            target, customer = entity, view
        if target is None or customer is None:
            return []
        linked = self.linked_to(target, customer.get("id"))
        if linked:
            return linked
        email = customer.get(CUSTOMER_EMAIL_FIELD) \
            if CUSTOMER_EMAIL_FIELD in self.app.entities[target].fields else None
        if email and "@" in str(email):
            return self.bare_address(str(email), str(customer.get("name") or email),
                                     "the customer's e-mail field")
        return []


def _same_id(a: Any, b: Any) -> bool:
    """Whether two reference values (ids, numeric strings or ``{"id": ...}``) match."""
    a = a.get("id") if isinstance(a, Mapping) else a
    b = b.get("id") if isinstance(b, Mapping) else b
    if a is None or b is None:
        return False
    return str(a) == str(b)
