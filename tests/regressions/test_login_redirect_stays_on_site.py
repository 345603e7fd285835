"""Issue #22.7: ``/login?next=/%09/evil.example`` answered ``Location: //evil.example``.

The login page only checked that the target started with ``/`` and not ``//``;
a tab (which browsers drop), a backslash, an encoded slash or a Unicode
lookalike slipped through to a protocol-relative URL. Every such target must
now fall back to the portal, and ordinary local paths must still pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import webapp
from .webapp import login

client, site = webapp.client, webapp.site  # fixtures

HOSTILE = [
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",           # what ?next=/%09/evil.example decodes to
    "/%09/evil.example",
    "/%2F/evil.example",
    "/%252F/evil.example",        # decoded twice by a proxy
    "/\n/evil.example",
    "https://evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "\uff0f\uff0fevil.example",   # fullwidth solidus
    "/\uff0fevil.example",
    "/\u2044evil.example",        # fraction slash
    "/\u2215evil.example",        # division slash
    "/\u3000/evil.example",       # ideographic space
    "/\u200b/evil.example",       # zero-width space
]


@pytest.mark.parametrize("target", HOSTILE, ids=[ascii(t) for t in HOSTILE])
def test_login_never_redirects_off_site(client: Any, target: str) -> None:
    res = login(client, next_url=target)
    assert res.status_code == 302
    location = res.headers["Location"]
    assert location == "/", f"{target!r} redirected to {location!r}"


@pytest.mark.parametrize("target", ["/forms/repair_request", "/track/abc?lang=en"])
def test_local_paths_still_pass(client: Any, target: str) -> None:
    res = login(client, next_url=target)
    assert res.status_code == 302
    assert res.headers["Location"] == target
