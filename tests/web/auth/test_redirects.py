"""dispatchflow.web.auth.redirects: which ``next`` targets a login may redirect to."""

from __future__ import annotations

import pytest

from dispatchflow.web.auth.redirects import safe_local_path


@pytest.mark.parametrize("target", [
    "/", "/forms/repair_request", "/track/abc?lang=en", "/a/b#part", "/%E5%B7%A5%E5%8D%95",
    "/工单", "/a:b",
])
def test_local_paths_pass_unchanged(target: str) -> None:
    assert safe_local_path(target) == target


@pytest.mark.parametrize("target", [
    None, "", "portal", "//evil.example", "///evil.example", "/\\evil.example",
    "\\\\evil.example", "/\t/evil.example", "/%09/evil.example", "/%2F/evil.example",
    "/%2f/evil.example", "/%252F/evil.example", "/%25252525252F/evil.example",
    "/\r\n/evil.example", "https://evil.example", "HTTPS://evil.example", "http:/evil",
    "javascript:alert(1)", " /evil", "\uff0f\uff0fevil.example", "/\uff0fevil.example",
    "/\u2044evil.example", "/\u2215evil.example", "/\u29f8evil.example",
    "/\ufe68evil.example", "/\u3000/evil", "/\u200b/evil", "/\u202e/evil", "/%ff",
    "/%EF%BC%8Fevil.example",
])
def test_anything_else_is_refused(target: str | None) -> None:
    assert safe_local_path(target) is None
