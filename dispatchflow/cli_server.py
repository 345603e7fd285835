"""``dispatchflow`` commands that run the application: serve, user, token."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .errors import DispatchflowError

EXAMPLE_BUNDLE = Path(__file__).resolve().parent.parent / "examples" / "field-service"


def register(main: click.Group) -> None:
    """Add the commands of this module to the ``dispatchflow`` group."""
    main.add_command(serve)
    main.add_command(user)
    main.add_command(token)


def _runtime():  # noqa: ANN202 - imported lazily: check/test must not need the database
    from .platform.config import Settings
    from .platform.runtime import Runtime

    return Runtime(Settings.from_env())


def report_channels(rt: Any) -> None:
    """One warning line about channels lacking configuration; releases held messages of
    channels configured now (see platform/channel_setup.py)."""
    from .platform.channel_setup import start_report
    from .platform.runtime import NoActiveVersion

    try:
        app = rt.app
    except NoActiveVersion:
        return
    line = start_report(app, rt.engine, rt.clock())
    if line:
        click.echo(f"warning: {line}", err=True)


@click.command()
@click.option("--demo", is_flag=True, help="publish the reference bundle with demo data")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(demo: bool, host: str, port: int) -> None:
    """Run the web application (embedded default: SQLite, inline jobs)."""
    from .dsl.compiler import compile_bundle
    from .dsl.diagnostics import render_text
    from .platform.demo import seed_records, seed_users
    from .platform.versions import publish
    from .web.app import create_app

    rt = _runtime()
    if demo:
        if not EXAMPLE_BUNDLE.is_dir():
            click.echo(f"the reference bundle is not at {EXAMPLE_BUNDLE}; run from a source "
                       "checkout (pip install -e .)", err=True)
            sys.exit(2)
        result = compile_bundle(EXAMPLE_BUNDLE)
        if result.app is None:
            click.echo(render_text(result.diagnostics), err=True)
            sys.exit(1)
        outcome = publish(rt.engine, result.app, created_by="demo", note="serve --demo")
        rt.refresh()
        click.echo(f"app version {rt.version_number} active ({rt.app.name} {rt.app.version})"
                   + (" (unchanged)" if outcome.unchanged else ""))
        created = seed_records(rt)
        if created:
            click.echo(f"created {created} sample records")
        click.echo("\ndemo users (user / role / password):")
        for user_id, role, password in seed_users(rt):
            click.echo(f"  {user_id:<24} {role:<16} {password}")
    app = create_app(runtime=rt)
    from .platform.jobs import warm_up

    warm_up(rt)  # the first requests and events do not pay for loading the version
    report_channels(rt)
    if not rt.settings.redis_url:
        # Embedded default: timers, the sweeper and held notifications run in this process.
        from .platform.scheduler import SchedulerThread

        SchedulerThread(rt).start()
    click.echo(f"\nopen http://{host}:{port}/  (API: http://{host}:{port}/api/v1/openapi.json)")
    app.run(host=host, port=port, debug=False, use_reloader=False)


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
    from .platform.users import add_user

    rt = _runtime()
    rt.refresh()
    known = set((rt.app.roles.data.get("roles") or {}) if rt.app.roles else {})
    attributes = {}
    for item in attrs:
        key, _, value = item.partition("=")
        f = rt.app.user.fields.get(key)
        if f is None or f.system:
            click.echo(f"unknown user field '{key}'; fields: "
                       f"{', '.join(n for n, x in rt.app.user.fields.items() if not x.system)}",
                       err=True)
            sys.exit(2)
        attributes[key] = [v for v in value.split(",") if v] if f.kind == "list" else \
            int(value) if f.kind in ("reference", "integer") else value
    try:
        add_user(rt.engine, user_id, name=name or user_id, password=password,
                 roles=list(roles), attributes=attributes, known_roles=known)
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"created user {user_id} ({', '.join(roles)})")


@user.command("deactivate")
@click.argument("user_id")
def user_deactivate(user_id: str) -> None:
    """Deactivate USER_ID: no login, and every token of theirs is refused at once."""
    from .platform.users import deactivate_user

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
    from .platform.users import create_token

    rt = _runtime()
    try:
        new = create_token(rt.engine, user_id, name=name, scopes=list(scopes), days=days or None)
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        rt.close()
    click.echo(new.token)
    click.echo(f"(token {new.id}; shown only now; expires "
               f"{new.expires_at.isoformat() if new.expires_at else 'never'})", err=True)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its number (refused from the next request on)."""
    from .platform.users import revoke_token

    _change_one(lambda engine: revoke_token(engine, token_id),
                done=f"revoked token {token_id}", missing=f"no active token {token_id}")


def _change_one(change: Callable[[Any], bool], *, done: str, missing: str) -> None:
    """Run ``change(engine)``; say ``done``, or ``missing`` (exit 1) when it changed nothing."""
    rt = _runtime()
    try:
        changed = change(rt.engine)
    finally:
        rt.close()
    if not changed:
        click.echo(missing, err=True)
        sys.exit(1)
    click.echo(done)
