"""Values for people (web/display.py) and who sees which reference names (web/pages.py)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from dispatchflow.platform.records.actors import Actor
from dispatchflow.web.app import create_app
from dispatchflow.web.display import Display, viewer_zone
from dispatchflow.web.portal.pages import reference_namer


def test_enums_tags_and_numbers_read_as_labels(reference_app) -> None:
    order = reference_app.entities["work_order"]
    zh = Display(reference_app, "zh", ZoneInfo("Asia/Shanghai"))
    en = Display(reference_app, "en", ZoneInfo("Asia/Shanghai"))
    assert zh.value(order, "status", "feedback") == "待评价"
    assert en.value(order, "status", "feedback") == "Awaiting feedback"
    assert en.value(order, "status", "unknown_state") == "unknown_state"
    assert zh.value(order, "tags", ["urgent", "complaint", "odd"]) == "加急、投诉、odd"
    assert en.value(order, "urgent", True) == "Yes" and zh.value(order, "urgent", False) == "否"
    assert zh.value(order, "location", {"lat": 31.2352, "lng": 121.50550000001}) == \
        "31.2352, 121.5055"
    assert en.value(order, "photos", ["a", "b"]) == "2 file(s)"
    assert en.value(order, "assignee", 7) == "#7"  # no names known: the number
    assert zh.duration(timedelta(seconds=20)) == "0 分"


def test_a_users_time_zone_wins_when_it_is_real(reference_app) -> None:
    assert viewer_zone(reference_app, {"timezone": "Europe/London"}).key == "Europe/London"
    assert viewer_zone(reference_app, {"timezone": "Mars/Base"}).key == "Asia/Shanghai"
    assert viewer_zone(reference_app, None).key == "Asia/Shanghai"


def test_reference_names_follow_authorization_and_sensitivity(rt, world) -> None:
    other_customer = Actor("c2", roles=("customer",),
                           attributes={"customer": world["customers"][1]["id"]})
    with create_app(runtime=rt).test_request_context():
        names = reference_namer(rt, other_customer)
        # A customer record is sensitive: another customer does not learn its name ...
        assert names("customer", world["customers"][0]["id"]) is None
        assert names("customer", world["customers"][1]["id"]) == "李娜"  # ... their own, yes
        # A technician's name is not sensitive: shown on the orders they work on.
        assert names("technician", world["techs"][0]["id"]) == "王师傅"
        assert names("technician", 999_999) is None
