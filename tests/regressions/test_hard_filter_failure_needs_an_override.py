"""Issue #21, item 2: assigning someone who fails a hard filter went through without a word.

A dispatcher could assign a plumber to an aircon order by hand and nothing said
the plumber lacks the skill the dispatch policy requires. Now such an
assignment answers 409 with the failing filters by their label (in the request
language) unless the body says ``"override": true`` with a reason; an override
is kept on the timeline and shown in the dispatch history and ``dispatchflow
explain``.
"""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from dispatchflow.cli import main
from dispatchflow.platform.store.db import timeline


def _assign(client, people, order: int, candidate: int, query: str = "", **extra):
    return client.post(f"/api/v1/work_order/{order}/assign{query}",
                       headers=people.headers("dispatcher"),
                       json={"candidate": candidate, "reason": "只有钱师傅有空", **extra})


def test_a_candidate_lacking_the_skill_is_refused_by_filter_label(client, people) -> None:
    order = people.order()
    before = people.writes(order)
    res = _assign(client, people, order, people.plumber)
    assert res.status_code == 409, res.get_json()
    problem = res.get_json()
    assert [e["message"] for e in problem["errors"]] == ["技能不符: aircon"]
    assert "技能不符: aircon" in problem["detail"] and "nearby_skilled" in problem["detail"]
    english = _assign(client, people, order, people.plumber, query="?lang=en")
    assert [e["message"] for e in english.get_json()["errors"]] == ["lacking skill: aircon"]
    stored = people.get(order)
    assert stored["assignee"] is None and stored["status"] == "offered"
    assert people.offer_states(order) == [(people.techs[0], "pending")]
    assert people.writes(order) == before


def test_an_override_needs_a_reason(client, people) -> None:
    order = people.order()
    before = people.writes(order)
    res = _assign(client, people, order, people.plumber, override=True, reason="  ")
    assert res.status_code == 422
    assert [e["field"] for e in res.get_json()["errors"]] == ["reason"]
    assert people.writes(order) == before


def test_an_override_with_a_reason_assigns_and_is_on_record(client, people, rt, monkeypatch,
                                                           database_url, tmp_path) -> None:
    order = people.order()
    plain = _assign(client, people, order, people.techs[1])  # passes every filter
    assert plain.status_code == 200 and plain.get_json()["overridden"] == []
    res = _assign(client, people, order, people.plumber, override=True)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["overridden"] == ["技能不符: aircon"]
    assert people.get(order)["assignee"] == people.plumber
    assert people.get(order)["status"] == "accepted"

    with rt.engine.connect() as conn:
        notes = conn.execute(select(timeline.c.summary).where(timeline.c.record_id == order)
                             .where(timeline.c.kind == "reassign")
                             .order_by(timeline.c.id)).scalars().all()
    assert notes == [
        f"dispatcher: assigned technician {people.techs[1]} by hand: 只有钱师傅有空",
        f"dispatcher: assigned technician {people.plumber} by hand (was {people.techs[1]}), "
        "overriding 技能不符: aircon: 只有钱师傅有空"]

    history = client.get(f"/api/v1/work_order/{order}/dispatch",
                         headers=people.headers("dispatcher")).get_json()
    assert [(a["candidate"], a["override"], a["failed_filters"], a["policy"])
            for a in history["assignments"]] == [
        (people.techs[1], False, [], "nearby_skilled"),
        (people.plumber, True, ["技能不符: aircon"], "nearby_skilled")]

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DISPATCHFLOW_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(main, ["explain", str(order), "--entity", "work_order"])
    assert out.exit_code == 0, out.output
    assert f"dispatcher → {people.plumber} (was {people.techs[1]}): 只有钱师傅有空" in out.output
    assert "override of policy nearby_skilled: 技能不符: aircon" in out.output
