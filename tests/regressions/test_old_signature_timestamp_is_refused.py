"""Issue #22, finding 5: a signed intake request was accepted for ever.

Nothing dated the signature, so a request captured today could be replayed next month.
The signature now covers its time ``t``: outside the tolerance (5 minutes by default,
``DISPATCHFLOW_CHANNEL_SIGNATURE_TOLERANCE``) it is refused with 401, and nothing is
written.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .intake_setup import intake, orders, post, signed_now


def test_a_request_signed_six_minutes_ago_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with intake(tmp_path, monkeypatch) as (rt, client, body):
        res = post(client, body, signed_now(body, "k-1", at=time.time() - 360), "k-1")
        assert res.status_code == 401
        assert res.get_json()["detail"].startswith("the X-Wechat-Signature timestamp is 36")
        assert res.get_json()["detail"].endswith("s old (more than 300 s): refused as a "
                                                 "possible replay")
        assert orders(rt) == 0
        fresh = post(client, body, signed_now(body, "k-1", at=time.time() - 60), "k-1")
        assert fresh.status_code == 201


def test_the_tolerance_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHFLOW_CHANNEL_SIGNATURE_TOLERANCE", "30")
    with intake(tmp_path, monkeypatch) as (rt, client, body):
        res = post(client, body, signed_now(body, at=time.time() - 60))
        assert res.status_code == 401 and "(more than 30 s)" in res.get_json()["detail"]
        assert orders(rt) == 0
