"""AggregateStore.mark_due keeps the process's cached document in step with the bump it writes
(DocCache.bumped): what the cache hands out afterwards is exactly what a read of the stored document
returns, the next save needs no read, and a cache that was behind the database never makes a save win
on a stale document."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.kernel import packing
from services.kernel.aggregates import AggregateStore, Change, DocCache
from tests.fakes import FakeDb
from tests.unit.test_packing import stored as as_read

CASE_LIKE = packing.Layout(packing.PACKED_FIELDS + ("snapshot", "fact_ids"), ("snapshot.status",))
T0 = datetime(2025, 6, 1, 8, 30, 15, 987654, tzinfo=timezone.utc)


def _appending(event_id: str, due: datetime | None = None):
    def decide(doc):
        facts = list((doc or {}).get("facts", [])) + [{"event_id": event_id, "at": T0, "text": "立案审批"}]
        return Change({"facts": facts, "fact_ids": [f["event_id"] for f in facts],
                       "snapshot": {"status": "立案", "n": len(facts)}, "due_at": due or T0 + timedelta(days=9)},
                      [{"event_id": f"out-{event_id}"}])
    return decide


class _Reads:
    """Counts the reads of the aggregate collection (find_one)."""

    def __init__(self, col):
        self.col, self.n = col, 0
        self._find_one = col.find_one
        col.find_one = self

    def __call__(self, *args, **kwargs):
        self.n += 1
        return self._find_one(*args, **kwargs)


def _store(db=None, cache=None):
    db = db or FakeDb()
    return AggregateStore(db["cases"], cache=cache if cache is not None else DocCache(1 << 20), layout=CASE_LIKE)


def test_the_cached_document_follows_the_bump_exactly_and_the_next_save_reads_nothing():
    store = _store()
    store.update("c1", _appending("f1"))
    saved, _ = store.update("c1", _appending("f2"))
    store.relayed("c1", saved["version"])
    when = T0 + timedelta(hours=1, microseconds=456789)
    assert store.mark_due("c1", when) == 1
    key = store._key("c1")
    stored = as_read(store.get("c1"))  # what a read returns (the fake keeps $set values unencoded)
    assert store.cache.version(key) == stored["version"] == saved["version"] + 1
    cached = store.cache.get(key, store._codec)
    assert cached == {**stored, "outbox": []}  # (its outbox was relayed: the cache remembers it)
    assert cached["due_at"] == when.replace(microsecond=444000) and cached["due_at"].tzinfo is not None
    assert store.cache.bytes == sum(len(e[0]) + len(e[1] or b"") for e in store.cache._docs.values())
    reads = _Reads(store.col)
    saved, _ = store.update("c1", _appending("f3"))
    assert reads.n == 0  # decided on the cached document, and its compare-and-set won
    assert saved["version"] == stored["version"] + 1
    assert [f["event_id"] for f in store.get("c1")["facts"]] == ["f1", "f2", "f3"]


def test_a_cache_behind_the_database_never_wins_with_its_stale_document():
    db = FakeDb()
    store = _store(db)
    store.update("c1", _appending("f1"))
    other = _store(db, cache=DocCache(1 << 20))  # another process saves meanwhile
    other.update("c1", _appending("g1"))
    store.mark_due("c1", T0 + timedelta(hours=2))
    saved, _ = store.update("c1", _appending("f2"))  # the stale cached version fails; the stored one is read
    assert [f["event_id"] for f in saved["facts"]] == ["f1", "g1", "f2"]
    assert [f["event_id"] for f in store.get("c1")["facts"]] == ["f1", "g1", "f2"]
    assert store.get("c1")["version"] == saved["version"] == 4


def test_a_document_gone_or_a_failed_bump_leaves_nothing_cached():
    store = _store()
    store.update("c1", _appending("f1"))
    store.col.docs.pop("c1")
    assert store.mark_due("c1", T0) == 0
    assert store.cache.version(store._key("c1")) is None

    store.update("c2", _appending("f1"))

    def broken(*args, **kwargs):
        raise ConnectionError("lost")

    store.col.update_one = broken
    with pytest.raises(ConnectionError):
        store.mark_due("c2", T0)
    assert store.cache.version(store._key("c2")) is None and store.cache.bytes == 0


def test_bumped_drops_an_entry_at_another_version_and_keeps_what_another_thread_saved():
    cache = DocCache(1 << 20)
    enc = CASE_LIKE.encode({"_id": "a", "version": 3, "facts": [{"event_id": "e"}], "due_at": T0, "outbox": []})
    cache.put_encoded(("db.c", "a"), enc, 3)
    cache.bumped(("db.c", "a"), 2, T0)  # the bump was over another version than the cached one
    assert cache.version(("db.c", "a")) is None and cache.bytes == 0
    cache.put_encoded(("db.c", "a"), enc, 3)
    cache.bumped(("db.c", "a"), 3, T0 + timedelta(days=1))
    doc = cache.get(("db.c", "a"), packing.KERNEL_CODEC)
    assert doc["version"] == 4 and doc["due_at"] == T0.replace(microsecond=987000) + timedelta(days=1)
    assert doc["facts"] == [{"event_id": "e"}]


def test_bumped_drops_an_entry_that_changed_while_it_was_encoding(monkeypatch):
    import bson

    cache = DocCache(1 << 20)
    enc = CASE_LIKE.encode({"_id": "a", "version": 3, "facts": [{"event_id": "e"}], "due_at": T0, "outbox": [{"x": 1}]})
    cache.put_encoded(("db.c", "a"), enc, 3)
    real_encode = bson.encode

    def relayed_meanwhile(doc, *args, **kwargs):
        cache.relayed(("db.c", "a"), 3)  # (another green thread, between bumped's two locked steps)
        return real_encode(doc, *args, **kwargs)

    monkeypatch.setattr(bson, "encode", relayed_meanwhile)
    cache.bumped(("db.c", "a"), 3, T0)
    monkeypatch.undo()
    assert cache.version(("db.c", "a")) is None and cache.bytes == 0
