"""The web tests' fixtures (the reference app published on SQLite then PostgreSQL, a
test client, a small world of records, tokens per role) for regressions that replay
an attack through the API: a test module binds them with ``name = api_world.name``."""

from __future__ import annotations

from web import conftest as web

#: The fixtures, bound by name in a test module (pytest collects them from there).
reference_app, rt, client, world, token_for = (web.reference_app, web.rt, web.client,
                                               web.world, web.token_for)
auth = web.auth
