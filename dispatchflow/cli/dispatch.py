"""Dispatch commands: ``explain`` a record's dispatch, ``demo-data`` and ``simulate``.

``explain RECORD_ID`` shows, from the database, every dispatch round of a record
(see :mod:`dispatchflow.platform.dispatch.explain`) and its manual assignments.
``demo-data OUT_DIR`` writes a seeded city (``orders.csv``, ``technicians.csv``;
see :mod:`dispatchflow.rules.demo_city`). ``simulate BUNDLE`` replays the orders
through the bundle's rules with :func:`dispatchflow.rules.simulation.simulate`,
optionally a second time with another policy on the same data and seed, and
prints the metrics side by side (``--out`` also writes them as CSV and a chart).
Neither of these two needs a database. Exit codes: 0 done, 1 the bundle has
errors (``explain``: the record cannot be read), 2 bad input (unreadable or
malformed CSV, unknown policy, unwritable output; ``explain``: which entity?).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..errors import DispatchflowError
from .common import EXIT_PROBLEMS, EXIT_USAGE, compiled_app, exit_with, fail, runtime


def register(main: click.Group) -> None:
    """Add ``explain``, ``demo-data`` and ``simulate`` to the ``dispatchflow`` group."""
    for command in (explain, demo_data, simulate_cmd):
        main.add_command(command)


@click.command()
@click.argument("record_id", type=int)
@click.option("--entity", default=None, help="the dispatched entity (default: the one "
              "dispatch policies are for)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--top", default=5, show_default=True, help="candidates shown per round")
def explain(record_id: int, entity: str | None, fmt: str, top: int) -> None:
    """Show every dispatch round of RECORD_ID: ranked candidates with each score term,
    exclusion counts by reason, the offers made and how they ended; then the manual
    assignments (who, whom, why, and the hard filters an override passed over)."""
    from ..platform.dispatch import explain as views
    from ..platform.dispatch.manual import assignments_of
    from ..platform.records.actors import SYSTEM_ACTOR

    rt = runtime()
    try:
        rt.refresh()
        names = sorted({p.entity for p in rt.app.policies.values()})
        entity = entity or (names[0] if len(names) == 1 else None)
        if entity is None:
            exit_with(f"say which entity with --entity ({', '.join(names) or 'none'})",
                      EXIT_USAGE)
        history = views.dispatch_history(rt, SYSTEM_ACTOR, entity, record_id)
        history["assignments"] = assignments_of(rt, SYSTEM_ACTOR, entity, record_id)
    except DispatchflowError as exc:
        fail(exc.message + (f"\n  hint: {exc.hint}" if exc.hint else ""), EXIT_PROBLEMS)
    if fmt == "json":
        click.echo(json.dumps(history, ensure_ascii=False, indent=2, default=str))
        return
    if not history["rounds"] and not history["assignments"]:
        click.echo(f"{entity} {record_id} has not been dispatched")
        return
    for rnd in history["rounds"]:
        decision = rnd["decision"] or {}
        click.echo(f"round {rnd['attempt']} · policy {rnd['policy']} · {rnd['status']} · "
                   f"requested {rnd['requested_at']}")
        summary = decision.get("summary") or {}
        if summary:
            click.echo(f"  {summary.get(rt.app.default_locale) or summary.get('en')}")
        for rank, cand in enumerate(decision.get("ranked", [])[:top], 1):
            terms = ", ".join(f"{t['label']} {float(t['value']):+.1f}"
                              for t in cand.get("terms", []))
            click.echo(f"  {rank}. {cand['id']}  score {cand['score']:.1f}"
                       + (f"  ({terms})" if terms else ""))
        if decision.get("batch"):
            b = decision["batch"]
            click.echo(f"  batch of {b['size']}: {b['total_km']} km (greedy "
                       f"{b['greedy_total_km']} km)")
        for offer in rnd["offers"]:
            click.echo(f"  offer → {offer['candidate']}: {offer['state']}"
                       + (f" ({offer['reason']})" if offer.get("reason") else ""))
    for done in history["assignments"]:
        click.echo(f"assigned by hand · {done['at']} · {done['actor']} → {done['candidate']}"
                   + (f" (was {done['previous']})" if done["transfer"] else "")
                   + f": {done['reason']}")
        if done["override"]:
            click.echo(f"  override of policy {done['policy']}: "
                       + "; ".join(done["failed_filters"]))
    rt.engine.dispose()


@click.command("demo-data")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", default=1, show_default=True, type=int, help="random seed")
@click.option("--technicians", default=200, show_default=True, type=click.IntRange(min=0),
              help="number of technicians")
@click.option("--orders", default=1000, show_default=True, type=click.IntRange(min=0),
              help="number of work orders over the day")
def demo_data(out_dir: str, seed: int, technicians: int, orders: int) -> None:
    """Write a synthetic Shanghai service day to OUT_DIR: orders.csv and technicians.csv."""
    from ..rules.demo_city import DUTY_SNAPSHOT, generate_city, write_city

    city = generate_city(seed, technicians, orders)
    try:
        orders_path, techs_path = write_city(city, out_dir)
    except OSError as exc:
        fail(f"{out_dir}: cannot write: {exc.strerror or exc}", EXIT_USAGE)
    on_duty = sum(1 for t in city.technicians if t["on_duty"])
    vip = sum(1 for o in city.orders if o["customer"]["tier"] == "VIP")
    click.echo(f"wrote {orders_path}: {len(city.orders)} work orders on {city.day} "
               f"({vip} VIP)")
    click.echo(f"wrote {techs_path}: {len(city.technicians)} technicians in "
               f"{len(city.regions)} districts ({on_duty} on duty at "
               f"{DUTY_SNAPSHOT:%H:%M})")


@click.command("simulate")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--orders", "orders_file", required=True, metavar="ORDERS.csv",
              help="work orders (as written by demo-data)")
@click.option("--technicians", "techs_file", required=True, metavar="TECHS.csv",
              help="technicians (as written by demo-data)")
@click.option("--policy", default=None, metavar="A",
              help="use dispatch policy A for every order (default: as the triage rules say)")
@click.option("--compare", default=None, metavar="B",
              help="run again with policy B on the same data and seed, and compare")
@click.option("--seed", default=1, show_default=True, type=int, help="random seed")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="write summary.csv, orders_A.csv, orders_B.csv and comparison.png here")
def simulate_cmd(bundle: str, orders_file: str, techs_file: str, policy: str | None,
                 compare: str | None, seed: int, out_dir: str | None) -> None:
    """Replay a day of work orders through BUNDLE's dispatch rules and report the metrics."""
    from tqdm import tqdm

    from ..rules.demo_city import read_orders, read_technicians
    from ..rules.engine import Engine
    from ..rules.simulation import check_policy, simulate

    engine = Engine(compiled_app(bundle))
    try:
        for name in (policy, compare):
            if name is not None:
                check_policy(engine, name)
        orders = read_orders(orders_file, engine.app.timezone)
        techs = read_technicians(techs_file, engine.app.timezone)
        results = []
        for name in [policy] + ([compare] if compare is not None else []):
            started = time.perf_counter()
            with tqdm(total=len(orders), desc=name or "as configured", unit="order",
                      file=sys.stderr, leave=False, disable=None) as bar:
                result = simulate(engine, orders, techs, seed=seed, policy=name,
                                  progress=_advance(bar))
            results.append((result, time.perf_counter() - started))
    except DispatchflowError as exc:
        fail(exc, EXIT_USAGE)
    took = ", ".join(f"{r.label} {s:.1f} s" for r, s in results)
    click.echo(f"simulated {len(orders)} work orders x {len(techs)} technicians, "
               f"seed {seed} ({took})\n")
    runs = [r for r, _ in results]
    for line in _table(runs):
        click.echo(line)
    if out_dir is not None:
        for path in _write_outputs(Path(out_dir), runs):
            click.echo(f"wrote {path}")


def _advance(bar: Any) -> Callable[[int, int], None]:
    """A progress callback moving a tqdm ``bar`` to (done, total)."""
    def progress(done: int, _total: int) -> None:
        bar.update(done - bar.n)
    return progress


# ------------------------------------------------------------------ the table


def _table(runs: Sequence[Any]) -> list[str]:
    """metric | A | B | difference (B - A), aligned; two columns for one run."""
    from ..rules.simulation import METRICS

    header = ["metric"] + [r.label for r in runs] + (["difference"] if len(runs) == 2 else [])
    rows = [header]
    for metric in METRICS:
        values = [r.metrics.value(metric.key) for r in runs]
        row = [metric.label] + [_show(metric.kind, v) for v in values]
        if len(runs) == 2:
            row.append(_show_diff(metric.kind, _diff(values[0], values[1])))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                             zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _show(kind: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if kind == "count":
        return f"{int(value)}"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "ratio":
        return f"{value:.3f}"
    return f"{value:.2f}" if kind == "km" else f"{value:.1f}"


def _show_diff(kind: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if kind == "count":
        return f"{int(value):+d}"
    if kind == "rate":
        return f"{value * 100:+.1f} pp"
    if kind == "ratio":
        return f"{value:+.3f}"
    return f"{value:+.2f}" if kind == "km" else f"{value:+.1f}"


# ------------------------------------------------------------------ files


def _write_outputs(folder: Path, runs: Sequence[Any]) -> list[Path]:
    from ..rules.simulation import METRICS, OUTCOME_COLUMNS

    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "summary.csv"]
        with open(written[0], "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["metric", "kind"] + [r.label for r in runs] +
                            (["difference"] if len(runs) == 2 else []))
            for metric in METRICS:
                values = [r.metrics.value(metric.key) for r in runs]
                if len(runs) == 2:
                    values.append(_diff(values[0], values[1]))
                writer.writerow([metric.label, metric.kind] + [_csv_cell(v) for v in values])
        for tag, run in zip("AB", runs, strict=False):
            path = folder / f"orders_{tag}.csv"
            with open(path, "w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(OUTCOME_COLUMNS)
                for row in run.outcome_rows():
                    writer.writerow([_csv_cell(row[c]) for c in OUTCOME_COLUMNS])
            written.append(path)
        chart = folder / "comparison.png"
        if _write_chart(chart, runs):
            written.append(chart)
        else:
            click.echo("note: matplotlib is not installed, so comparison.png was not drawn "
                       "(pip install 'matplotlib>=3.8,<4')", err=True)
    except OSError as exc:
        fail(f"{folder}: cannot write: {exc.strerror or exc}", EXIT_USAGE)
    return written


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _write_chart(path: Path, runs: Sequence[Any]) -> bool:
    """Draw the main metrics side by side and a histogram of minutes to acceptance.

    Returns False when matplotlib is not installed. Uses the object-oriented API
    with the Agg canvas, so no GUI backend or global pyplot state is involved.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    import numpy as np

    colors = ("#3b75af", "#ef8636")
    fig = Figure(figsize=(14, 8), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 4)
    panels = [
        (fig.add_subplot(grid[0, 0:2]), "Rates (%)", 100.0,
         [("assigned", "assignment_rate"), ("SLA response", "sla_response_rate"),
          ("SLA on site", "sla_onsite_rate")]),
        (fig.add_subplot(grid[0, 2]), "Acceptance (min) and travel (km)", 1.0,
         [("mean accept", "mean_minutes_to_accept"), ("p90 accept", "p90_minutes_to_accept"),
          ("travel km", "mean_travel_km")]),
        (fig.add_subplot(grid[0, 3]), "Load balance (Gini, 0 = even)", 1.0,
         [("Gini of jobs", "gini_jobs")]),
        (fig.add_subplot(grid[1, 0]), "Escalations", 1.0, [("escalated", "escalations")]),
    ]
    width = 0.8 / len(runs)
    for ax, title, scale, metrics in panels:
        x = np.arange(len(metrics))
        for k, run in enumerate(runs):
            heights = [(run.metrics.value(key) or 0) * scale for _, key in metrics]
            bars = ax.bar(x + (k - (len(runs) - 1) / 2) * width, heights, width,
                          label=run.label, color=colors[k % 2])
            ax.bar_label(bars, fmt="%.3g" if scale == 1.0 else "%.1f", fontsize=8)
        ax.set_xticks(x, [label for label, _ in metrics])
        ax.set_title(title)
        ax.margins(y=0.15)
    rates = panels[0][0]
    rates.set_ylim(0, 118)
    rates.legend(loc="upper center", ncols=len(runs))
    hist = fig.add_subplot(grid[1, 1:])
    samples = [[o.minutes_to_accept for o in run.outcomes if o.minutes_to_accept is not None]
               for run in runs]
    top = max((max(s) for s in samples if s), default=1.0)
    bins = np.linspace(0, max(top, 1.0), 40).tolist()
    for k, (run, values) in enumerate(zip(runs, samples, strict=True)):
        hist.hist(values, bins=bins, histtype="step", linewidth=1.6, color=colors[k % 2],
                  label=f"{run.label} (n={len(values)})")
    hist.set_xlabel("minutes from creation to acceptance")
    hist.set_ylabel("work orders")
    hist.set_title("Minutes to acceptance")
    hist.legend()
    fig.suptitle("Dispatch simulation: " + " vs ".join(r.label for r in runs))
    fig.savefig(path, dpi=100)
    return True
