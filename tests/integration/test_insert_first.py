"""A fact that creates its aggregate (the adapter's `creating`) is inserted without a read first
(services/kernel/aggregates.py `AggregateStore.update(probably_new=True)`), and a decision that changes
nothing on the stored document keeps that document cached: on the real FerretDB."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from bson.codec_options import CodecOptions

from services.kernel.aggregates import AggregateStore, DocCache, derived_event_id, outbound
from services.kernel.eventsourced import EventSourcedRepository
from tests.db_recorder import recorded_database

AT = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(servers):
    with recorded_database(servers["MONGO_URI"], "insfirst") as database:
        aware = database.with_options(CodecOptions(tz_aware=True))  # (as the services' clients)
        aware.recorder = database.recorder
        yield aware


class ThingAdapter:
    """A minimal domain: a thing is created by `thing.created`; every fact sends `thing.changed`."""

    creating = ("thing.created",)

    def aggregate_id(self, envelope):
        return envelope["payload"]["thing_id"]

    def fold(self, facts):
        return [f["type"] for f in facts]

    def snapshot(self, agg, as_of):
        return {"dept": "d1", "facts": len(agg)}

    def findings(self, agg, as_of):
        return []

    def due_at(self, agg, as_of):  # (an urgent thing is due sooner)
        return AT + timedelta(days=10 if "thing.urgent" in agg else 30)

    def changed_events(self, agg, snapshot, cause, as_of):
        return [outbound("thing.changed", {"facts": len(agg)}, dept="d1", source="things", occurred_at=as_of,
                         event_id=derived_event_id(cause, "thing.changed"))]


def fact(type_, thing_id="t1", event_id=None):
    return {"event_id": event_id or str(uuid.uuid4()), "type": type_, "occurred_at": AT.isoformat(), "dept": "d1",
            "source": "d1-system", "payload": {"thing_id": thing_id}}


def repo(db, seen=None):
    """A repository over `db.things` with a document cache of its own (another process's)."""
    listeners = [lambda old, new: seen.append((old, new))] if seen is not None else []
    return EventSourcedRepository(AggregateStore(db.things, listeners=listeners, cache=DocCache(1 << 20)),
                                  ThingAdapter(), "things")


def due(db):
    return db.things_due.find_one({"_id": "t1"})["due_at"]


def things_commands(db):
    return [c for c in db.recorder.seen if c[1] in ("things", "things_outbox")]


def test_a_creating_fact_is_inserted_without_a_read(db):
    doc, pending = repo(db).ingest(fact("thing.created"), AT)
    assert doc["version"] == 1 and [e["type"] for e in pending] == ["thing.changed"]
    commands = [c for c in things_commands(db) if c[1] == "things"]
    assert commands == [("insert", "things")]  # no find before it
    assert db.things.count_documents({}) == 1


def test_a_probably_new_aggregate_that_exists_is_decided_again_on_the_stored_one_and_saved_once(db):
    other = repo(db)  # another process created it (and its cache is not ours)
    other.ingest(fact("thing.created"), AT)
    other.ingest(fact("thing.updated"), AT)
    db.recorder.seen.clear()
    seen = []
    mine = repo(db, seen)
    doc, pending = mine.ingest(fact("thing.created"), AT)  # (a second creating fact: guessed new, it is not)
    assert doc["version"] == 3 and doc["snapshot"]["facts"] == 3
    assert [f["type"] for f in doc["facts"]] == ["thing.created", "thing.updated", "thing.created"]
    # the stored outbox (not relayed in this test) and the decision on the stored document; not the lost one's
    assert [e["payload"]["facts"] for e in pending] == [1, 2, 3]
    assert len(seen) == 1 and seen[0][0]["version"] == 2 and seen[0][1]["version"] == 3  # notified once, on the stored
    commands = [c for c in things_commands(db) if c[1] == "things"]
    assert commands == [("insert", "things"), ("find", "things"), ("update", "things")]
    assert db.things.count_documents({}) == 1
    assert [f["type"] for f in mine.store.get("t1")["facts"]] == ["thing.created", "thing.updated", "thing.created"]
    # the lost insert did not mark the key contended: the saved document is cached, the next fact reads nothing
    db.recorder.seen.clear()
    doc, _ = mine.ingest(fact("thing.updated"), AT)
    assert doc["version"] == 4
    assert ("find", "things") not in db.recorder.seen


def test_a_redelivered_creating_fact_is_a_duplicate_not_a_second_aggregate(db):
    created = fact("thing.created")
    first, _ = repo(db).ingest(created, AT)
    seen = []
    again, pending = repo(db, seen).ingest(dict(created), AT)  # another process gets it redelivered
    assert pending == [] and again["version"] == first["version"] == 1
    assert seen == [(again, again)]  # the stored document, not the guessed one's decision
    assert db.things.count_documents({}) == 1
    assert [f["event_id"] for f in repo(db).store.get("t1")["facts"]] == [created["event_id"]]
    # and in a batch with another fact of it: the other one is applied once, the creating one not again
    doc, _ = repo(db).ingest_many([dict(created), fact("thing.updated")], AT)
    assert doc["version"] == 2 and len(doc["fact_ids"]) == 2


def test_a_decision_that_changes_nothing_keeps_the_stored_document_cached(db):
    things = repo(db)
    created = fact("thing.created")
    things.ingest(created, AT)
    db.things.update_one({"_id": "t1"}, {"$inc": {"version": 1}})  # another writer: the cached copy is stale
    db.recorder.seen.clear()
    doc, pending = things.reevaluate("t1", AT)  # nothing due: no change on the cached copy, nor on the stored one
    assert pending == [] and doc["version"] == 2
    assert ("find", "things") in db.recorder.seen
    db.recorder.seen.clear()
    doc, _ = things.ingest(fact("thing.updated"), AT)  # decided on the cached stored copy: no read, saved
    assert doc["version"] == 3 and db.things.find_one({"_id": "t1"})["version"] == 3
    assert [c for c in db.recorder.seen if c[0] == "find" and c[1] in ("things", "things_outbox")] == [
        ("find", "things")]  # (only the check above, after the save)


def test_a_lost_guessed_insert_does_not_make_the_existing_aggregates_due_date_later(db):
    other = repo(db)
    other.ingest(fact("thing.created"), AT)
    other.ingest(fact("thing.urgent"), AT)  # due in 10 days
    assert due(db) == AT + timedelta(days=10)
    doc, _ = repo(db).ingest(fact("thing.created"), AT)  # guessed new (due in 30 days), it is not: 10 days
    assert doc["version"] == 3 and doc["due_at"] == AT + timedelta(days=10)
    assert due(db) == AT + timedelta(days=10)  # never late
