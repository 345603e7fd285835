"""What a bundle's channels need from the environment, and what of it is missing.

Intake channels (``channels/*.yaml``) need their HMAC secret (``secret_env``);
notification channels need the transport's settings: e-mail an SMTP host, a webhook
its URL variable (``DISPATCHFLOW_WEBHOOK_URL_...``), http(s), the signing secret, a
well-formed ``DISPATCHFLOW_WEBHOOK_ALLOW`` and -- when asked to resolve -- a
destination the policy allows.

Used by ``dispatchflow check BUNDLE --env`` (every problem, as diagnostics:
:func:`environment_diagnostics`) and at ``serve``/``worker`` start
(:func:`start_report`: one warning line, and held messages of channels configured
now are released).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from ...dsl.compiler import App
from ...dsl.diagnostics import Diagnostic, Severity
from .channels import WebhookTransport
from .errors import DeliveryError
from .unconfigured import configuration_error, release, report_once


@dataclass(frozen=True)
class Missing:
    """One channel lacking configuration: where it is declared (``file``, ``key``), whose
    it is, what is missing and how to fix it."""

    file: str
    key: str
    owner: str
    problem: str
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.owner}: {self.problem}"


def missing_configuration(app: App, env: Mapping[str, str] | None = None, *,
                          resolve: bool = False) -> list[Missing]:
    """Every channel of ``app`` lacking configuration in ``env`` (default: the
    environment). ``resolve`` also resolves webhook hosts and applies the destination
    policy (a network lookup)."""
    env = os.environ if env is None else env
    out: list[Missing] = []
    for name, item in app.channels.items():
        var = item.data.get("secret_env")
        owner = f"intake channel '{name}'"
        if not var:
            out.append(Missing(item.file, "channel", owner, "no secret_env: it refuses every "
                               "message", f"add secret_env: {name.upper()}_CHANNEL_SECRET"))
        elif not env.get(var):
            out.append(Missing(item.file, "secret_env", owner, f"{var} is not set: it refuses "
                               "every message (503)", f"export {var}=<the secret shared with "
                               "the sender>"))
    for name, item in app.notifications.items():
        for channel in item.data.get("channels") or ():
            address = item.data.get("webhook_url_env") if channel == "webhook" else None
            owner = f"notification '{name}' ({channel})"
            key = "webhook_url_env" if channel == "webhook" else "channels"
            error = configuration_error(channel, address, env)
            if error is None and resolve and channel == "webhook":
                error = _destination_error(env, str(address))
            if error is not None:
                out.append(Missing(item.file, key, owner, error.message, error.hint))
    return out


def environment_diagnostics(app: App) -> list[Diagnostic]:
    """Channels of ``app`` lacking configuration in this environment, as E9001 errors.

    For ``dispatchflow check BUNDLE --env``: resolves webhook hosts (a network lookup,
    see :func:`missing_configuration`); each points at the line of the key at fault.
    """
    out = []
    for m in missing_configuration(app, resolve=True):
        lines = app.sources.get(m.file, "").splitlines()
        line = next((i for i, text in enumerate(lines, 1) if text.startswith(f"{m.key}:")), 0)
        out.append(Diagnostic(Severity.ERROR, "E9001", str(m), m.file, line, 1 if line else 0,
                              hint=m.hint, source_line=lines[line - 1] if line else None))
    return out


def _destination_error(env: Mapping[str, str], var: str) -> DeliveryError | None:
    try:
        WebhookTransport(None, env).destination(env[var])
    except DeliveryError as exc:
        return exc
    return None


def start_report(app: App, engine: Engine, now: datetime,
                 env: Mapping[str, str] | None = None) -> str | None:
    """At ``serve``/``worker`` start: release held messages of channels configured now
    and return the one warning line about what is missing (None when nothing is).

    The problems count as reported, so deliveries held for them log nothing more.
    """
    release(engine, now, env)
    missing = missing_configuration(app, env)
    if not missing:
        return None
    problems = list(dict.fromkeys(m.problem for m in missing))
    for problem in problems:
        report_once(problem, say=False)
    owners: dict[str, list[str]] = {}
    for m in missing:
        owners.setdefault(m.problem, []).append(m.owner)
    parts = [f"{problem} ({', '.join(owners[problem])})" for problem in problems]
    return ("channels without configuration (their notifications are held as "
            "'unconfigured', intake refuses): " + "; ".join(parts) +
            " -- see `dispatchflow check BUNDLE --env`")
