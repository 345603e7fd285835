"""``dispatchflow serve``: run the web application, optionally as a living demo city.

Embedded default: SQLite and inline jobs, with the scheduler (timers, sweeper,
held notifications) in a thread of this process; with ``REDIS_URL`` set, jobs go
to the queues and ``dispatchflow worker``/``scheduler`` run them.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import click

from ..errors import DispatchflowError
from ..platform import defaults
from .common import EXIT_PROBLEMS, EXIT_USAGE, exit_with, fail, report_channels, runtime


def register(main: click.Group) -> None:
    """Add ``serve`` to the ``dispatchflow`` group."""
    main.add_command(serve)


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
    rt = runtime()
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
        exit_with(f"the reference bundle is not at {REFERENCE_BUNDLE}; run from a source "
                  "checkout (pip install -e .)", EXIT_USAGE)
    try:
        per_hour = parse_rate(rate or os.environ.get("DISPATCHFLOW_DEMO_RATE")
                              or str(defaults.DEMO_ORDERS_PER_HOUR))
        factor = speed if speed is not None else \
            float(os.environ.get("DISPATCHFLOW_DEMO_SPEED") or defaults.DEMO_CITY_SPEED)
        if not factor > 0:
            raise ValueError(f"--demo-speed must be positive (got {factor:g})")
    except ValueError as exc:
        fail(exc, EXIT_USAGE)
    result = compile_bundle(REFERENCE_BUNDLE)
    if result.app is None:
        exit_with(render_text(result.diagnostics), EXIT_PROBLEMS)
    outcome = publish(rt.engine, result.app, created_by="demo", note="serve --demo")
    rt.refresh()
    click.echo(f"app version {rt.version_number} active ({rt.app.name} {rt.app.version})"
               + (" (unchanged)" if outcome.unchanged else ""))
    try:
        created = seed_records(rt)
        users = seed_users(rt)
        script, people = load_city(demo_folder()), load_seed(demo_folder())
    except DispatchflowError as exc:
        fail(exc, EXIT_PROBLEMS)
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
