"""Commands on users and API tokens: ``user add|deactivate``, ``token create|revoke``.

They change the users table of the database named by ``DATABASE_URL`` through
:mod:`dispatchflow.platform.records.users`; ``user add`` checks roles and user
fields against the active app version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..errors import DispatchflowError
from .common import EXIT_PROBLEMS, EXIT_USAGE, exit_with, fail, runtime


def register(main: click.Group) -> None:
    """Add the ``user`` and ``token`` groups to the ``dispatchflow`` group."""
    main.add_command(user)
    main.add_command(token)


@click.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("user_id")
@click.option("--name", default=None, help="display name (default: the id)")
@click.option("--role", "roles", multiple=True, required=True, help="a role (repeatable)")
@click.option("--attr", "attrs", multiple=True, help="user field, e.g. regions=PD,XH or "
              "technician=3")
@click.password_option(help="the password (prompted when not given)")
def user_add(user_id: str, name: str | None, roles: tuple[str, ...], attrs: tuple[str, ...],
             password: str) -> None:
    """Create USER_ID with roles of the active app."""
    from ..platform.records.users import add_user

    rt = runtime()
    rt.refresh()
    known = set((rt.app.roles.data.get("roles") or {}) if rt.app.roles else {})
    attributes = {}
    for item in attrs:
        key, _, value = item.partition("=")
        f = rt.app.user.fields.get(key)
        if f is None or f.system:
            exit_with(f"unknown user field '{key}'; fields: "
                      f"{', '.join(n for n, x in rt.app.user.fields.items() if not x.system)}",
                      EXIT_USAGE)
        attributes[key] = [v for v in value.split(",") if v] if f.kind == "list" else \
            int(value) if f.kind in ("reference", "integer") else value
    try:
        add_user(rt.engine, user_id, name=name or user_id, password=password,
                 roles=list(roles), attributes=attributes, known_roles=known)
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
    click.echo(f"created user {user_id} ({', '.join(roles)})")


@user.command("deactivate")
@click.argument("user_id")
def user_deactivate(user_id: str) -> None:
    """Deactivate USER_ID: no login, and every token of theirs is refused at once."""
    from ..platform.records.users import deactivate_user

    _change_one(lambda engine: deactivate_user(engine, user_id),
                done=f"deactivated user {user_id}", missing=f"no active user {user_id}")


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("user_id")
@click.option("--name", default="cli", show_default=True)
@click.option("--scope", "scopes", multiple=True,
              help="restrict to e.g. work_order:read (repeatable; default: the user's rights)")
@click.option("--days", default=365, show_default=True, help="lifetime in days (0: none)")
def token_create(user_id: str, name: str, scopes: tuple[str, ...], days: int) -> None:
    """Create an API token for USER_ID; prints it once."""
    from ..platform.records.users import create_token

    rt = runtime()
    try:
        new = create_token(rt.engine, user_id, name=name, scopes=list(scopes), days=days or None)
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
    finally:
        rt.close()
    click.echo(new.token)
    click.echo(f"(token {new.id}; shown only now; expires "
               f"{new.expires_at.isoformat() if new.expires_at else 'never'})", err=True)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its number (refused from the next request on)."""
    from ..platform.records.users import revoke_token

    _change_one(lambda engine: revoke_token(engine, token_id),
                done=f"revoked token {token_id}", missing=f"no active token {token_id}")


def _change_one(change: Callable[[Any], bool], *, done: str, missing: str) -> None:
    """Run ``change(engine)``; say ``done``, or ``missing`` (exit 1) when it changed nothing."""
    rt = runtime()
    try:
        changed = change(rt.engine)
    finally:
        rt.close()
    if not changed:
        exit_with(missing, EXIT_PROBLEMS)
    click.echo(done)
