"""``dispatchflow explain ORDER``: why a record was dispatched the way it was."""

from __future__ import annotations

import json
import sys

import click

from ..errors import DispatchflowError


def register(main: click.Group) -> None:
    """Add the commands of this module to the ``dispatchflow`` group."""
    main.add_command(explain)


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
    from ..platform.assembly import Runtime
    from ..platform.config import Settings
    from ..platform.dispatch import explain as views
    from ..platform.dispatch.manual import assignments_of
    from ..platform.records.actors import SYSTEM_ACTOR

    rt = Runtime(Settings.from_env())
    try:
        rt.refresh()
        names = sorted({p.entity for p in rt.app.policies.values()})
        entity = entity or (names[0] if len(names) == 1 else None)
        if entity is None:
            click.echo(f"say which entity with --entity ({', '.join(names) or 'none'})",
                       err=True)
            sys.exit(2)
        history = views.dispatch_history(rt, SYSTEM_ACTOR, entity, record_id)
        history["assignments"] = assignments_of(rt, SYSTEM_ACTOR, entity, record_id)
    except DispatchflowError as exc:
        click.echo(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
                   err=True)
        sys.exit(1)
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
