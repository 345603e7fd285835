"""Issue #22, finding 5: one captured signed body sent with three new Idempotency-Keys
created three work orders.

The HMAC covered the body only, so whoever saw one signed request could send it again
under any new key (and at any later time): every key was a "new message". Now the
signature covers the time, the key and the body: the captured signature does not fit a
new key, and a body signed over the old body-only scheme is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from .intake_setup import SECRET, intake, orders, post, signed_now


def test_a_body_only_signature_replayed_with_three_new_keys_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with intake(tmp_path, monkeypatch) as (rt, client, body):
        captured = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        statuses = [post(client, body, captured, key).status_code
                    for key in ("replay-1", "replay-2", "replay-3")]
        assert statuses == [401, 401, 401]
        assert orders(rt) == 0


def test_a_captured_signed_request_does_not_fit_a_new_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with intake(tmp_path, monkeypatch) as (rt, client, body):
        signature = signed_now(body, "msg-1")
        first = post(client, body, signature, "msg-1")
        assert first.status_code == 201, first.get_json()
        for key in ("msg-2", "msg-3", "msg-4"):
            res = post(client, body, signature, key)
            assert res.status_code == 401
            assert res.get_json()["detail"] == \
                "the X-Wechat-Signature signature does not match the body"
        # the very same request again (same key) is a repeat: the record made before
        again = post(client, body, signature, "msg-1")
        assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
        assert orders(rt) == 1


def test_the_same_body_freshly_signed_under_a_new_key_within_the_window_is_the_same_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with intake(tmp_path, monkeypatch) as (rt, client, body):
        first = post(client, body, signed_now(body, "a-1"), "a-1")
        second = post(client, body, signed_now(body, "a-2"), "a-2")
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.get_json() == {"id": first.get_json()["id"], "skipped": [],
                                     "duplicate": True}
        assert orders(rt) == 1
