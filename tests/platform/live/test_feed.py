"""The change feed: audit and timeline rows merged in order, cursors, and the commit nudge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatchflow.platform.live.feed import Cursor, changes_after, head
from dispatchflow.platform.live.watch import watch
from dispatchflow.platform.store.db import audit_log, create_system_tables, timeline

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


class CountingBroker:
    def __init__(self) -> None:
        self.published = 0

    def publish(self) -> None:
        self.published += 1


@pytest.fixture
def feed_engine(engine: Any) -> Any:
    create_system_tables(engine)
    return engine


def _audit(conn: Any, record_id: int, minute: int, action: str = "update") -> None:
    conn.execute(audit_log.insert().values(entity="work_order", record_id=record_id,
                                           action=action, at=T0 + timedelta(minutes=minute)))


def _note(conn: Any, record_id: int, minute: int, kind: str = "rule") -> None:
    conn.execute(timeline.insert().values(entity="work_order", record_id=record_id, kind=kind,
                                          summary="s", at=T0 + timedelta(minutes=minute)))


def test_cursor_round_trips_and_refuses_what_is_not_one() -> None:
    assert Cursor.parse(str(Cursor(12, 7))) == Cursor(12, 7)
    for text in (None, "", "12", "a-b", "-1-2", "1-2-3"):
        assert Cursor.parse(text) is None


def test_changes_merge_both_tables_by_time_and_resume_from_any_cursor(feed_engine: Any) -> None:
    with feed_engine.begin() as conn:
        _audit(conn, 1, 0, "create")
        _note(conn, 1, 1, "dispatch")
        _audit(conn, 2, 2, "create")
        _audit(conn, 2, 3, "read")  # an audited read is not a change
        _note(conn, 2, 3)
    with feed_engine.connect() as conn:
        changes, more = changes_after(conn, Cursor(0, 0), 10)
        assert not more
        assert [(c.record_id, c.kind) for c in changes] == [
            (1, "create"), (1, "dispatch"), (2, "create"), (2, "rule")]
        assert [str(c.event_id) for c in changes] == ["1-0", "1-1", "2-1", "2-2"]
        assert head(conn) == Cursor(3, 2)  # the read is past the last change
        for i, change in enumerate(changes):
            rest, _ = changes_after(conn, change.event_id, 10)
            assert rest == changes[i + 1:]
        page, more = changes_after(conn, Cursor(0, 0), 2)
        assert more and page == changes[:2]


def test_a_truncated_table_stops_the_merge_before_its_unread_rows(feed_engine: Any) -> None:
    with feed_engine.begin() as conn:
        for minute in range(3):
            _audit(conn, 1, minute)
        _note(conn, 1, 10)
    with feed_engine.connect() as conn:
        page, more = changes_after(conn, Cursor(0, 0), 2)
        assert more and [c.kind for c in page] == ["update", "update"]
        rest, more = changes_after(conn, page[-1].event_id, 2)
        assert not more and [c.kind for c in rest] == ["update", "rule"]


def test_a_commit_that_wrote_to_the_feed_nudges_once_and_a_rollback_not(feed_engine: Any) -> None:
    broker = CountingBroker()
    watch(feed_engine, broker)  # type: ignore[arg-type]
    with feed_engine.begin() as conn:
        _audit(conn, 1, 0)
        _note(conn, 1, 0)
    assert broker.published == 1
    with pytest.raises(RuntimeError), feed_engine.begin() as conn:
        _note(conn, 1, 1)
        raise RuntimeError("rolled back")
    with feed_engine.begin() as conn:
        conn.execute(audit_log.select())  # reads only
    assert broker.published == 1
