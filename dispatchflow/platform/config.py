"""Settings from the environment, with the embedded default when nothing is set.

- ``DATABASE_URL``: SQLAlchemy URL (e.g. ``postgresql+psycopg://...``); default a
  SQLite file in the home folder.
- ``REDIS_URL``: when set, jobs go to RQ; unset means inline execution.
- ``DISPATCHFLOW_HOME``: the home folder (default ``./.dispatchflow``).
- ``DISPATCHFLOW_SECRET_KEY``: signs sessions, CSRF tokens and tracking links.
  In the embedded default a random key is created once and kept (mode 0600) in
  the home folder, so restarts keep users logged in; production sets it.
- ``DISPATCHFLOW_MAX_UPLOAD_MB``: upload size limit.
- ``DISPATCHFLOW_CHANNEL_SIGNATURE_TOLERANCE``: seconds an intake channel
  signature's time may differ from the clock (default
  ``defaults.CHANNEL_SIGNATURE_TOLERANCE_SECONDS``).
- ``DISPATCHFLOW_WEBHOOK_ALLOW``: networks and host names outbound webhooks may
  reach besides public addresses, comma-separated (``10.0.0.0/8,hooks.example.com``);
  read by the webhook transport with its other settings, like the SMTP ones (see
  :mod:`dispatchflow.platform.notify.destinations`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from . import defaults

#: The variable the webhook transport reads its allow-list from (see module docs).
WEBHOOK_ALLOW_ENV = "DISPATCHFLOW_WEBHOOK_ALLOW"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; build with :meth:`from_env`, override with ``replace``."""

    home: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    max_upload_mb: float = defaults.MAX_UPLOAD_MB
    channel_signature_tolerance: float = defaults.CHANNEL_SIGNATURE_TOLERANCE_SECONDS

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        home = Path(str(overrides.pop("home", None) or env.get("DISPATCHFLOW_HOME")
                        or defaults.HOME_DIR)).resolve()
        database_url = str(overrides.pop("database_url", None) or env.get("DATABASE_URL")
                           or f"sqlite:///{home / defaults.SQLITE_FILE}")
        secret = overrides.pop("secret_key", None) or env.get("DISPATCHFLOW_SECRET_KEY") \
            or _embedded_secret(home)
        settings = cls(home=home, database_url=database_url,
                       redis_url=env.get("REDIS_URL") or None, secret_key=str(secret),
                       max_upload_mb=float(env.get("DISPATCHFLOW_MAX_UPLOAD_MB",
                                                   defaults.MAX_UPLOAD_MB)),
                       channel_signature_tolerance=float(
                           env.get("DISPATCHFLOW_CHANNEL_SIGNATURE_TOLERANCE")
                           or defaults.CHANNEL_SIGNATURE_TOLERANCE_SECONDS))
        return replace(settings, **overrides)  # type: ignore[arg-type]


def _embedded_secret(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
