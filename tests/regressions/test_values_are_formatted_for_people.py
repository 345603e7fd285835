"""Issue #21.6: values were shown raw on pages.

The tracking page printed ``2026-12-07T13:05:43.178016+08:00``, ``True`` /
``False`` on a Chinese page, tag codes instead of labels and no technician
name. Every page now formats values through one module (web/display.py):
date-times in the viewer's zone to the minute, booleans and enums and tags by
label in zh and en, references by display name, durations in words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from portal_world import anonymous, login, track_path

from dispatchflow.platform.records.actors import SYSTEM_ACTOR
from dispatchflow.platform.records.users import add_user, load_actor

ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def rows(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", html))


def test_the_tracking_page_shows_values_for_people(portal_rt, demo) -> None:
    order = demo["feedback"]
    client = anonymous(portal_rt)
    track = track_path(client, order)
    zh = client.get(track).get_data(as_text=True)
    assert not ISO.search(zh) and "True" not in zh and "False" not in zh
    shown = rows(zh)
    assert shown["负责技师"] == demo["technician_name"]  # the technician's name, not an id
    assert shown["客户不在场"] == "是" and shown["状态"] == "待评价"
    assert "加急" in shown["标签"] and "urgent" not in shown["标签"]
    completed = portal_rt.records.get(SYSTEM_ACTOR, "work_order", order)["completed_at"]
    local = datetime.fromisoformat(completed).astimezone(ZoneInfo("Asia/Shanghai"))  # app's
    assert shown["完工时间"] == f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    en = rows(client.get(f"{track}?lang=en").get_data(as_text=True))
    assert en["Customer not present"] == "Yes" and en["Status"] == "Awaiting feedback"
    assert en["Assigned technician"] == demo["technician_name"] and "Urgent" in en["Tags"]
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", en["Completed at"])


def test_a_user_with_a_time_zone_reads_times_in_it(portal_rt, demo) -> None:
    tech = load_actor(portal_rt.engine, "demo_technician")
    assert tech is not None
    add_user(portal_rt.engine, "tech_london", name="Tech", password="pw-london",
             roles=["technician"], attributes={**tech.attributes, "timezone": "Europe/London"})
    order = demo["in_service"]
    accepted = portal_rt.records.get(SYSTEM_ACTOR, "work_order", order)["accepted_at"]
    client = anonymous(portal_rt)
    login(client, "tech_london", "pw-london")
    html = client.get(f"/records/work_order/{order}?lang=en").get_data(as_text=True)
    assert not ISO.search(html)
    shown = rows(html)
    london = datetime.fromisoformat(accepted).astimezone(ZoneInfo("Europe/London"))
    assert shown["Accepted at"].endswith(f"{london:%H:%M}")
    assert shown["Assigned technician"] == demo["technician_name"]


def test_durations_and_times_read_as_words() -> None:
    from dispatchflow.web.display import Display

    app = type("A", (), {"default_locale": "zh", "tags": {}, "timezone": "Asia/Shanghai"})()
    zh = Display(app, "zh", ZoneInfo("Asia/Shanghai"))  # type: ignore[arg-type]
    en = Display(app, "en", ZoneInfo("Europe/London"))  # type: ignore[arg-type]
    assert zh.duration(timedelta(hours=3, minutes=20)) == "3 小时 20 分"
    assert en.duration(timedelta(hours=3, minutes=20)) == "3 h 20 min"
    assert en.duration(timedelta(days=1, minutes=5)) == "1 d 5 min"
    moment = datetime(2026, 12, 7, 5, 5, 43, 178016, tzinfo=UTC)
    assert zh.datetime(moment) == "2026年12月7日 13:05"
    assert en.datetime(moment) == "7 Dec 2026, 05:05"
    assert zh.boolean(False) == "否" and en.boolean(True) == "Yes"

