"""A revoked token, or one of a deactivated user, is refused on the very next request.

Issue #21 item 7: ``test_forged_expired_and_revoked_tokens_are_401`` never revoked
a token (``revoke_token`` was called by no test), a token holder had no way to
revoke its own token, and a user could not be deactivated. Here a dispatcher holds
four tokens: one revoked through the platform, one through ``dispatchflow token
revoke ID``, one by its holder (``DELETE /api/v1/tokens/current``); each is
refused (401) at once while the others keep working, and deactivating the user
(``dispatchflow user deactivate``) refuses the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dispatchflow.cli import main
from dispatchflow.platform.records.users import add_user, create_token, revoke_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def status(client: Any, token: str) -> int:
    return int(client.get("/api/v1/me", headers=bearer(token)).status_code)


def test_revoked_tokens_and_a_deactivated_user_are_refused_at_once(
        rt: Any, client: Any, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DISPATCHFLOW_HOME", str(tmp_path / "cli-home"))
    cli = CliRunner()
    add_user(rt.engine, "alice", name="Alice", password=None, roles=["dispatcher"],
             attributes={"regions": ["PD"]})
    by_platform, by_cli, by_holder, last = (
        create_token(rt.engine, "alice", name=name) for name in ("a", "b", "c", "d"))
    assert {status(client, t.token) for t in (by_platform, by_cli, by_holder, last)} == {200}

    assert revoke_token(rt.engine, by_platform.id)
    assert status(client, by_platform.token) == 401
    assert status(client, by_cli.token) == 200
    assert not revoke_token(rt.engine, by_platform.id)  # once is enough

    result = cli.invoke(main, ["token", "revoke", str(by_cli.id)], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, f"revoked token {by_cli.id}\n")
    assert status(client, by_cli.token) == 401
    assert status(client, by_holder.token) == 200

    res = client.delete("/api/v1/tokens/current", headers=bearer(by_holder.token))
    assert res.status_code == 204, res.get_data(as_text=True)
    assert status(client, by_holder.token) == 401
    assert client.delete("/api/v1/tokens/current",
                         headers=bearer(by_holder.token)).status_code == 401
    assert status(client, last.token) == 200

    result = cli.invoke(main, ["user", "deactivate", "alice"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "deactivated user alice\n")
    assert status(client, last.token) == 401
    result = cli.invoke(main, ["user", "deactivate", "alice"], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (1, "no active user alice\n")
