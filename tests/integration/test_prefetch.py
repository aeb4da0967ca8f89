"""A batch reads its aggregates' documents ahead, in one `_id $in` find (services/kernel/aggregates.py
`AggregateStore.prefetch`, called by `EventSourcedService.prefetch` before the batch's aggregates are
applied concurrently): the updates that follow read nothing, an aggregate found absent is inserted
without a read, and a document another writer saved (or created) after the read ahead is decided again
on the stored one — never saved on the stale one. On the real FerretDB."""
from datetime import timedelta

from services.kernel.aggregates import AggregateStore, DocCache
from services.kernel.eventsourced import EventSourcedRepository
from tests.integration.test_insert_first import AT, ThingAdapter, db, fact  # noqa: F401 (db: the recorded scratch database)


def store(db, unit_absent=None):
    """A store over `db.things` with a document cache of its own (one process), in a unit of work
    whose read-ahead absences are `unit_absent` (a set; None: outside a unit)."""
    s = AggregateStore(db.things, cache=DocCache(1 << 20))
    s.unit_absent = lambda: unit_absent
    return s


def repo(s):
    return EventSourcedRepository(s, ThingAdapter(), "things")


def things(db):
    return [c for c in db.recorder.seen if c[1] in ("things", "things_outbox")]


def created(db, *ids):
    """The things created by another process (its own cache), each relayed (no outbox marker left)."""
    other = store(db)
    for thing_id in ids:
        doc, pending = repo(other).ingest(fact("thing.created", thing_id), AT)
        other.relayed(thing_id, doc["version"])


def test_documents_read_ahead_are_one_find_and_their_updates_read_nothing(db):
    created(db, "t1", "t2", "t3")
    db.recorder.seen.clear()
    absent = set()
    ours = store(db, absent)
    read = ours.prefetch(["t1", "t2", "t3", "t4"])
    assert sorted(read) == ["t1", "t2", "t3"] and [d["version"] for d in read.values()] == [1, 1, 1]
    assert ours.cache.version(ours._key("t2")) == 1
    # their outboxes were relayed (no markers): one read of the markers, and the outboxes dropped
    assert things(db) == [("find", "things"), ("find", "things_outbox")]
    assert all(d["outbox"] == [] for d in read.values())
    assert absent == {ours._key("t4")}
    db.recorder.seen.clear()
    for thing_id in ("t1", "t2", "t3"):
        doc, pending = repo(ours).ingest(fact("thing.urgent", thing_id), AT)
        assert doc["version"] == 2 and [e["type"] for e in pending] == ["thing.changed"]  # not the relayed one again
    doc, _ = repo(ours).ingest(fact("thing.urgent", "t4"), AT)  # absent when read ahead: inserted unread
    assert doc["version"] == 1
    assert not [c for c in things(db) if c[0] == "find"]
    assert db.things.find_one({"_id": "t4"})["version"] == 1


def test_a_cached_document_is_not_read_ahead_again(db):
    created(db, "t1", "t2")
    ours = store(db, set())
    repo(ours).ingest(fact("thing.urgent", "t1"), AT)  # (read, saved and cached by this process)
    db.recorder.seen.clear()
    assert list(ours.prefetch(["t1", "t2"])) == ["t2"]
    assert ours.prefetch(["t1", "t2"]) == {}  # both cached now: nothing sent
    assert [c for c in things(db) if c[1] == "things"] == [("find", "things")]


def test_an_outbox_not_yet_relayed_is_kept_as_read(db):
    other = store(db)
    repo(other).ingest(fact("thing.created", "t1"), AT)  # saved with an outbox, its marker still there
    read = store(db, set()).prefetch(["t1"])
    assert [e["type"] for e in read["t1"]["outbox"]] == ["thing.changed"]


def test_a_document_saved_by_another_writer_after_the_read_ahead_is_decided_again_on_the_stored_one(db):
    created(db, "t1")
    ours = store(db, set())
    ours.prefetch(["t1"])
    other = store(db)
    repo(other).ingest(fact("thing.urgent", "t1"), AT)  # version 2, after our read ahead
    doc, _ = repo(ours).ingest(fact("thing.urgent", "t1"), AT + timedelta(hours=1))
    stored = db.things.find_one({"_id": "t1"})
    assert doc["version"] == stored["version"] == 3  # the stale copy lost its compare-and-set; read, saved once
    assert stored["snapshot"]["facts"] == 3


def test_an_aggregate_created_after_it_was_read_ahead_as_absent_is_read_and_decided_again(db):
    absent = set()
    ours = store(db, absent)
    assert ours.prefetch(["t1"]) == {} and absent == {ours._key("t1")}
    created(db, "t1")  # another process creates it meanwhile
    db.recorder.seen.clear()
    doc, _ = repo(ours).ingest(fact("thing.urgent", "t1"), AT)
    # the guessed insert lost on the key, then reads (whether the insert won; the document) and one save
    sent = [c[0] for c in things(db) if c[1] == "things"]
    assert sent[0] == "insert" and sent[-1] == "update" and sent.count("update") == 1 and "find" in sent
    assert doc["version"] == 2 and db.things.find_one({"_id": "t1"})["snapshot"]["facts"] == 2


def test_outside_a_unit_of_work_nothing_is_remembered_absent(db):
    ours = store(db, None)
    assert ours.prefetch(["t1"]) == {}
    created(db, "t1")
    doc, _ = repo(ours).ingest(fact("thing.urgent", "t1"), AT)
    assert doc["version"] == 2


def test_a_store_without_a_cache_reads_nothing_ahead(db):
    created(db, "t1")
    s = AggregateStore(db.things, cache=DocCache(0))
    db.recorder.seen.clear()
    assert s.prefetch(["t1"]) == {} and things(db) == []


def test_a_read_ahead_fills_at_most_half_the_cache(db):
    created(db, *[f"t{n}" for n in range(20)])
    one = len(__import__("bson").encode(store(db).prefetch(["t0"])["t0"]))
    ours = AggregateStore(db.things, cache=DocCache(8 * one))
    ours.unit_absent = lambda: None
    read = ours.prefetch([f"t{n}" for n in range(20)])
    assert len(read) == 20  # all read (a service reads ahead from them) ...
    # ... the first of them fill half the cache (the last one put may pass it by its own size)
    assert 4 <= len(ours.cache) <= 5 and ours.cache.bytes <= ours.cache.max_bytes // 2 + 2 * one
    assert ours.cache.version(ours._key("t0")) == 1 and ours.cache.version(ours._key("t19")) is None
