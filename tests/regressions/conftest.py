"""The web tests' fixtures (a published reference app, a test client, users per role),
for regressions that replay an attack through the API."""

from web.conftest import client, reference_app, rt, token_for, world  # noqa: F401
