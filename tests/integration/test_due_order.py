"""The deadline scan takes the longest overdue first (services/kernel/aggregates.py `AggregateStore.due`): after
an outage more aggregates are due than one scan takes, and the rest wait for the next scan. Until 2026-12-06 the
scan took them in the database's order, so a case overdue for hours could wait behind ones due a moment ago.
On the real FerretDB."""
import random
from datetime import timedelta

from services.kernel.aggregates import AggregateStore
from tests.integration.test_insert_first import AT, db  # noqa: F401 (db: the recorded scratch database)


def test_a_scan_of_more_due_than_its_limit_takes_the_longest_overdue_first(db):
    store = AggregateStore(db.things)
    overdue = [(f"t{i:03d}", AT - timedelta(minutes=i)) for i in range(60)]  # t059 the longest overdue
    later = [(f"u{i:03d}", AT + timedelta(minutes=1 + i)) for i in range(5)]  # not due yet
    rows = overdue + later
    random.Random(7).shuffle(rows)  # (stored in an order unlike their due dates)
    for agg_id, when in rows:
        store.deadlines.insert_one({"_id": agg_id, "due_at": when})
    taken = store.due(AT, limit=25)
    assert [doc["_id"] for doc in taken] == [f"t{i:03d}" for i in range(59, 34, -1)]
    assert [doc["due_at"] for doc in taken] == sorted(doc["due_at"] for doc in taken)
    # one due date shared by several: by id, so two scans agree on which come first
    store.deadlines.insert_many([{"_id": "s2", "due_at": AT - timedelta(hours=2)},
                                 {"_id": "s1", "due_at": AT - timedelta(hours=2)}])
    assert [doc["_id"] for doc in store.due(AT, limit=3)] == ["s1", "s2", "t059"]
    assert {doc["_id"] for doc in store.due(AT)} == {agg_id for agg_id, _ in overdue} | {"s1", "s2"}
