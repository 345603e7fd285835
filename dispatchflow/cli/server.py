"""``dispatchflow`` commands that run the application: serve, user, token."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import DispatchflowError
from ..platform import defaults


def register(main: click.Group) -> None:
    """Add the commands of this module to the ``dispatchflow`` group."""
    main.add_command(serve)
    main.add_command(user)
    main.add_command(token)


def _runtime():  # noqa: ANN202 - imported lazily: check/test must not need the database
    from ..platform.assembly import Runtime
    from ..platform.config import Settings

    return Runtime(Settings.from_env())


def report_channels(rt: Any) -> None:
    """One warning line about channels lacking configuration; releases held messages of
    channels configured now (see platform/channel_setup.py)."""
    from ..platform.notify.setup import start_report
    from ..platform.runtime.state import NoActiveVersion

    try:
        app = rt.app
    except NoActiveVersion:
        return
    line = start_report(app, rt.engine, rt.clock())
    if line:
        click.echo(f"warning: {line}", err=True)


@click.command()
@click.option("--demo", is_flag=True, help="publish the reference bundle with demo data and "
              "bring its city to life")
@click.option("--quiet", is_flag=True, help="with --demo: seed only, no simulated city (a "
              "still picture)")
@click.option("--demo-rate", default=None, metavar="RATE",
              help="with --demo: new requests per hour, e.g. 6/h or 0.5/min "
                   f"(env DISPATCHFLOW_DEMO_RATE; default {defaults.DEMO_ORDERS_PER_HOUR:g}/h)")
@click.option("--demo-speed", default=None, type=float,
              help="with --demo: how many times faster than real time the city works "
                   f"(env DISPATCHFLOW_DEMO_SPEED; default {defaults.DEMO_CITY_SPEED:g})")
@click.option("--demo-seed", default=None, type=int,
              help=f"with --demo: the city's random seed (default {defaults.DEMO_SEED})")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(demo: bool, quiet: bool, demo_rate: str | None, demo_speed: float | None,
          demo_seed: int | None, host: str, port: int) -> None:
    """Run the web application (embedded default: SQLite, inline jobs)."""
    from ..web.app import create_app

    if not demo and (quiet or demo_rate or demo_speed is not None or demo_seed is not None):
        raise click.UsageError("--quiet, --demo-rate, --demo-speed and --demo-seed go with "
                               "--demo")
    rt = _runtime()
    city = None
    if demo:
        city = _demo(rt, quiet, demo_rate, demo_speed, demo_seed)
    app = create_app(runtime=rt)
    from ..platform.assembly.root import warm_up

    warm_up(rt)  # the first requests and events do not pay for loading the version
    report_channels(rt)
    scheduler = None
    if not rt.settings.redis_url:
        # Embedded default: timers, the sweeper and held notifications run in this process.
        from ..platform.runtime.scheduler import SchedulerThread

        scheduler = SchedulerThread(rt)
        scheduler.start()
    handler = None
    if city is not None:
        handler = _log_city()
        city.start()
    click.echo(f"\nopen http://{host}:{port}/  (API: http://{host}:{port}/api/v1/openapi.json)")
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if city is not None:
            city.stop()
        if handler is not None:
            logging.getLogger("dispatchflow.demo").removeHandler(handler)
        if scheduler is not None:
            scheduler.stop()
            scheduler.join(10.0)


def _log_city() -> logging.Handler:
    """Show what the city does (``dispatchflow.demo`` at INFO) on standard error."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("dispatchflow.demo")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def _exit_on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)  # unwinds through serve's finally: the threads stop cleanly


def _demo(rt: Any, quiet: bool, rate: str | None, speed: float | None,
          seed: int | None) -> Any:
    """Publish the reference bundle, seed it, and (unless ``quiet``) make its city thread."""
    from ..dsl.compiler import compile_bundle
    from ..dsl.diagnostics import render_text
    from ..platform.demo.city import CityThread, LivingCity, parse_rate
    from ..platform.demo.data import load_city, load_seed
    from ..platform.demo.seed import (
        REFERENCE_BUNDLE,
        demo_folder,
        ensure_channel_secrets,
        seed_records,
        seed_users,
    )
    from ..platform.store.versions import publish

    if not REFERENCE_BUNDLE.is_dir():
        click.echo(f"the reference bundle is not at {REFERENCE_BUNDLE}; run from a source "
                   "checkout (pip install -e .)", err=True)
        sys.exit(2)
    try:
        per_hour = parse_rate(rate or os.environ.get("DISPATCHFLOW_DEMO_RATE")
                              or str(defaults.DEMO_ORDERS_PER_HOUR))
        factor = speed if speed is not None else \
            float(os.environ.get("DISPATCHFLOW_DEMO_SPEED") or defaults.DEMO_CITY_SPEED)
        if not factor > 0:
            raise ValueError(f"--demo-speed must be positive (got {factor:g})")
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    result = compile_bundle(REFERENCE_BUNDLE)
    if result.app is None:
        click.echo(render_text(result.diagnostics), err=True)
        sys.exit(1)
    outcome = publish(rt.engine, result.app, created_by="demo", note="serve --demo")
    rt.refresh()
    click.echo(f"app version {rt.version_number} active ({rt.app.name} {rt.app.version})"
               + (" (unchanged)" if outcome.unchanged else ""))
    try:
        created = seed_records(rt)
        users = seed_users(rt)
        script, people = load_city(demo_folder()), load_seed(demo_folder())
    except DispatchflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if created:
        click.echo(f"created {created} sample records")
    click.echo("\ndemo users (user / role / password):")
    for user_id, role, password in users:
        click.echo(f"  {user_id:<24} {role:<16} {password}")
    if quiet:
        click.echo("\n--quiet: a still picture, no simulated city")
        return None
    for env in ensure_channel_secrets(rt, script):
        click.echo(f"{env} was not set: using a demo secret (kept in {rt.settings.home})")
    city = LivingCity(rt, script, people, seed=defaults.DEMO_SEED if seed is None else seed,
                      orders_per_hour=per_hour, speed=factor)
    click.echo(f"\nliving city: {per_hour:g} new requests/h over the channels, people working "
               f"{factor:g}x real time, as user city-simulator (模拟城市 / City simulator)")
    return CityThread(city)


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
    from ..platform.records.users import revoke_token

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
