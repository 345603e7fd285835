"""Tests for dispatchflow.cli.common: what serve and worker say about channels at start."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_serve_and_worker_report_missing_channel_configuration_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from dispatchflow.cli.common import report_channels
    from dispatchflow.dsl.compiler import compile_bundle
    from dispatchflow.platform.assembly import Runtime
    from dispatchflow.platform.config import Settings
    from dispatchflow.platform.store.versions import publish

    for var in ("DISPATCHFLOW_SMTP_HOST", "WECHAT_WEBHOOK_SECRET", "EMAIL_CHANNEL_SECRET",
                "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE"):
        monkeypatch.delenv(var, raising=False)
    rt = Runtime(Settings.from_env(home=tmp_path / "home", secret_key="t",
                                   database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        report_channels(rt)  # nothing published yet: nothing to say
        assert capsys.readouterr().err == ""
        app = compile_bundle(Path(__file__).resolve().parents[2] / "examples" /
                             "field-service").app
        assert app is not None
        publish(rt.engine, app, created_by="test")
        rt.refresh()
        report_channels(rt)
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("warning: channels without configuration (their notifications "
                               "are held as 'unconfigured', intake refuses): ")
        for part in ("EMAIL_CHANNEL_SECRET is not set", "WECHAT_WEBHOOK_SECRET is not set",
                     "DISPATCHFLOW_SMTP_HOST is not set (notification 'complaint_alert' "
                     "(email), notification 'escalation' (email)",
                     "DISPATCHFLOW_WEBHOOK_URL_WECHAT_TEMPLATE is not set"):
            assert part in line
    finally:
        rt.engine.dispose()
