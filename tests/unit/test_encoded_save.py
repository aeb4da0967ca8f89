"""A save encodes its document once (services/kernel/packing.py `encode`): the bytes written are the
bytes the process's document cache keeps (aggregates.DocCache.put_encoded), and what the cache hands
out is exactly what a read of the stored document followed by `unpack` returns."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import bson
from bson.raw_bson import RawBSONDocument

from services.kernel import packing
from services.kernel.aggregates import AggregateStore, Change, DocCache
from tests.fakes import FakeDb
from tests.unit.test_packing import aggregates_of_every_service, stored

CASE_LIKE = packing.Layout(packing.PACKED_FIELDS + ("snapshot", "fact_ids"), ("snapshot.status", "snapshot.dept"))


def test_encoded_is_the_packed_document_and_decodes_as_a_read_would():
    for layout in (packing.DEFAULT_LAYOUT, CASE_LIKE):
        for name, docs in aggregates_of_every_service().items():
            for doc in docs[:40]:
                doc = {**doc, "snapshot": {**doc["snapshot"], "status": "立案"}}
                enc = layout.encode(doc)
                assert isinstance(enc.stored, RawBSONDocument)
                as_read = stored(layout.pack(doc))  # what the database returns for the packed document
                assert bson.decode(enc.stored.raw, codec_options=packing.KERNEL_CODEC) == as_read, (name, doc["_id"])
                assert next(iter(enc.stored)) == "_id"  # (the driver writes _id first)
                assert enc.decode() == packing.unpack(as_read) == stored(doc), (name, doc["_id"])
                assert enc.size == len(enc.stored.raw) + len(enc.inner)


def test_id_goes_first_even_when_the_document_names_it_last():
    # AggregateStore.update builds a new aggregate as {**fields, "_id": agg_id}; the driver used to move
    # _id first when it encoded an insert, and it writes the encoded bytes as they are now
    for layout in (packing.DEFAULT_LAYOUT, CASE_LIKE):
        enc = layout.encode({"version": 1, "facts": [{"event_id": "e1"}], "snapshot": {"status": "立案"}, "_id": "c-1"})
        assert list(enc.stored.keys())[0] == "_id" and enc.stored["_id"] == "c-1"
        assert enc.decode()["facts"] == [{"event_id": "e1"}]


def test_a_document_with_nothing_to_pack_is_encoded_whole():
    doc = {"_id": "x", "version": 2, "outbox": [], "n": 1}
    enc = packing.encode(doc)
    assert enc.inner is None and packing.PACKED not in enc.stored and enc.decode() == doc


def test_the_cache_keeps_the_encoded_save_hands_out_copies_and_counts_its_bytes():
    at = datetime(2025, 5, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    doc = {"_id": "a", "version": 3, "outbox": [{"event_id": "e1"}], "due_at": at,
           "facts": [{"event_id": "f1", "occurred_at": at, "payload": {"名称": "执法"}}],
           "snapshot": {"status": "立案", "amount": 1.5}, "fact_ids": ["f1"]}
    enc = CASE_LIKE.encode(doc)
    cache = DocCache(1 << 20)
    cache.put_encoded(("db.c", "a"), enc, 3)
    assert cache.version(("db.c", "a")) == 3 and cache.bytes == enc.size
    first = cache.get(("db.c", "a"), packing.KERNEL_CODEC)
    assert first == stored(doc) and first["due_at"].tzinfo == timezone.utc
    assert first["due_at"] == at.replace(microsecond=123000)  # (milliseconds, as the database keeps them)
    first["facts"].append({"event_id": "bad"})  # a caller changing its copy changes nothing cached
    assert cache.get(("db.c", "a"), packing.KERNEL_CODEC)["facts"] == stored(doc)["facts"]
    cache.relayed(("db.c", "a"), 3)
    assert cache.get(("db.c", "a"), packing.KERNEL_CODEC)["outbox"] == []
    cache.drop(("db.c", "a"))
    assert cache.bytes == 0 and len(cache) == 0
    cache.contended(("db.c", "a"))
    cache.put_encoded(("db.c", "a"), enc, 3)  # (an aggregate other writers save is not cached)
    assert cache.get(("db.c", "a")) is None


def test_a_save_caches_what_a_read_of_the_stored_document_returns():
    at = datetime(2025, 6, 1, 8, 30, 15, 987654, tzinfo=timezone.utc)
    store = AggregateStore(FakeDb()["cases"], cache=DocCache(1 << 20), layout=CASE_LIKE)

    def decide(doc):
        facts = list((doc or {}).get("facts", [])) + [{"event_id": f"f{len((doc or {}).get('facts', []))}", "at": at}]
        return Change({"facts": facts, "fact_ids": [f["event_id"] for f in facts],
                       "snapshot": {"status": "立案", "n": len(facts)}, "due_at": at}, [{"event_id": "e"}])

    for _ in range(3):
        saved, _ = store.update("c1", decide)
    cached = store.cache.get(store._key("c1"), store._codec)
    assert cached == store.get("c1") and cached["version"] == saved["version"] == 3
    assert packing.PACKED in store.col.docs["c1"] and "facts" not in store.col.docs["c1"]  # stored packed
    assert [f["event_id"] for f in cached["facts"]] == ["f0", "f1", "f2"] and cached["_w"] == saved["_w"]


def test_a_projection_reader_counts_into_the_labelled_metric():
    from services.kernel import projection_cache
    from services.kernel.metrics import PROJECTION_CACHE

    reader = projection_cache.projection_reader(FakeDb(), "penalty-test")
    assert reader is not None  # (the process cache is on by default)

    def value(kind, result):
        return PROJECTION_CACHE.labels("penalty-test", kind, result)._value.get()

    before = value("officers", "hit"), value("officers", "miss")
    reader.count("officers", "hit", 3)
    reader.count("officers", "hit", 2)
    reader.count("officers", "miss", 1)
    assert (value("officers", "hit"), value("officers", "miss")) == (before[0] + 5, before[1] + 1)
