"""Found by schemathesis over the whole API (issue #21, item 4): a work order
created with ``response_due`` in the year 498 answered 201 with
``"0498-05-30T05:46:49.110000+08:05:43"`` — Shanghai's local mean time before
1901 has an offset with seconds, which is not a valid RFC 3339 ``date-time``, so
the response broke its own schema. Such a time is now written in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator, FormatChecker

from dispatchflow.platform.store.jsonvalues import json_value

DATE_TIME = Draft202012Validator({"type": "string", "format": "date-time"},
                                 format_checker=FormatChecker())


def test_a_local_mean_time_is_written_as_the_same_instant_in_utc() -> None:
    shanghai = datetime(498, 5, 30, 7, 40, 6, 110000, tzinfo=ZoneInfo("Asia/Shanghai"))
    text = json_value(shanghai)
    assert DATE_TIME.is_valid(text), text
    assert datetime.fromisoformat(text) == shanghai
    assert text.endswith("+00:00")


def test_ordinary_times_keep_their_zone() -> None:
    now = datetime(2026, 12, 7, 13, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert json_value(now) == "2026-12-07T13:05:00+08:00"
    assert json_value(datetime(2026, 12, 7, 5, 5, tzinfo=UTC)) == "2026-12-07T05:05:00+00:00"
