"""Users, passwords and API tokens.

Passwords are stored as werkzeug scrypt hashes. API tokens are random
(``dft_`` + 32 bytes, base64url), shown once at creation and stored only as
their SHA-256; each is scoped (``work_order:read``, ``work_order:*``, ``*``),
may expire, and can be revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from werkzeug.security import check_password_hash, generate_password_hash

from ...errors import ConflictError, ValidationError
from .. import defaults
from ..store.db import api_tokens, users
from .actors import Actor

TOKEN_PREFIX = "dft_"


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # the secret: shown once, never stored
    expires_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def add_user(engine: Engine, user_id: str, *, name: str, password: str | None,
             roles: list[str], attributes: dict[str, Any] | None = None,
             known_roles: set[str] | None = None) -> None:
    """Create a user; raises ConflictError if the id is taken, ValidationError on bad roles."""
    if not user_id or len(user_id) > 100:
        raise ValidationError("a user id is 1 to 100 characters")
    if known_roles is not None:
        unknown = [r for r in roles if r not in known_roles]
        if unknown:
            raise ValidationError(f"unknown role(s): {', '.join(unknown)}",
                                  hint=f"roles of the active app: {', '.join(sorted(known_roles))}")
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.id == user_id)).first():
            raise ConflictError(f"user '{user_id}' already exists")
        conn.execute(users.insert().values(
            id=user_id, name=name, roles=list(roles), attributes=dict(attributes or {}),
            active=True, created_at=_now(),
            password_hash=generate_password_hash(password, method=defaults.PASSWORD_HASH_METHOD)
            if password else None))


def actor_from_row(row: Any, channel: str, scopes: tuple[str, ...] = ()) -> Actor:
    return Actor(row.id, row.name, tuple(row.roles), dict(row.attributes), channel, scopes)


def authenticate(engine: Engine, user_id: str, password: str) -> Actor | None:
    """The user's Actor if the password matches an active user, else None."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None or not row.active or not row.password_hash:
        # Spend the same time as a real check so ids cannot be probed by timing.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row.password_hash, password):
        return None
    return actor_from_row(row, "web")


@cache
def _dummy_hash() -> str:
    # Built on first use, not at import: scrypt is deliberately slow.
    return generate_password_hash("not a password", method=defaults.PASSWORD_HASH_METHOD)


def load_actor(engine: Engine, user_id: str, channel: str = "web") -> Actor | None:
    """The Actor of an active user (for sessions), or None."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return actor_from_row(row, channel) if row is not None and row.active else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, user_id: str, *, name: str, scopes: list[str] | None = None,
                 days: int | None = defaults.TOKEN_DAYS) -> NewToken:
    """A new API token for ``user_id`` (the secret is in the result, only there)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(defaults.TOKEN_BYTES)
    expires = _now() + timedelta(days=days) if days else None
    with engine.begin() as conn:
        if not conn.execute(select(users.c.id).where(users.c.id == user_id)).first():
            raise ValidationError(f"no user '{user_id}'", hint="create it with: dispatchflow "
                                  "user add")
        result = conn.execute(api_tokens.insert().values(
            user_id=user_id, name=name, token_hash=_digest(token), scopes=list(scopes or []),
            created_at=_now(), expires_at=expires))
        token_id = result.inserted_primary_key[0]  # type: ignore[index]
    return NewToken(int(token_id), token, expires)


def actor_for_token(engine: Engine, token: str) -> Actor | None:
    """The Actor behind a bearer token, or None if unknown, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > defaults.TOKEN_MAX_CHARS:
        return None
    now = _now()
    query = (select(api_tokens.c.id.label("token_id"), api_tokens.c.scopes,
                    api_tokens.c.expires_at, api_tokens.c.revoked_at, users.c.id.label("user_id"),
                    users.c.name, users.c.roles, users.c.attributes, users.c.active)
             .join(users, users.c.id == api_tokens.c.user_id)
             .where(api_tokens.c.token_hash == _digest(token)))
    with engine.begin() as conn:
        row = conn.execute(query).first()
        if row is None or row.revoked_at is not None or not row.active:
            return None
        expires = row.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # SQLite returns naive UTC
        if expires is not None and expires <= now:
            return None
        conn.execute(update(api_tokens).where(api_tokens.c.id == row.token_id)
                     .values(last_used_at=now))
    return Actor(row.user_id, row.name, tuple(row.roles), dict(row.attributes), "api",
                 tuple(row.scopes))


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token by id; False if there is no such (unrevoked) token.

    Takes effect at once: every request looks its token up (no cache).
    """
    with engine.begin() as conn:
        result = conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                              .where(api_tokens.c.revoked_at.is_(None))
                              .values(revoked_at=_now()))
    return bool(result.rowcount)


def revoke_token_secret(engine: Engine, token: str) -> bool:
    """Revoke the token whose secret is ``token`` (its holder signing out); False if
    it is unknown or already revoked. The user's other tokens stay valid."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > defaults.TOKEN_MAX_CHARS:
        return False
    with engine.begin() as conn:
        result = conn.execute(update(api_tokens).where(api_tokens.c.token_hash == _digest(token))
                              .where(api_tokens.c.revoked_at.is_(None))
                              .values(revoked_at=_now()))
    return bool(result.rowcount)


def deactivate_user(engine: Engine, user_id: str) -> bool:
    """Mark a user inactive: no login, no session, and none of their tokens is accepted
    from the next request on. False if there is no such active user."""
    with engine.begin() as conn:
        result = conn.execute(update(users).where(users.c.id == user_id)
                              .where(users.c.active.is_(True)).values(active=False))
    return bool(result.rowcount)
