"""Stored documents read back as written; bulks of large writes keep every byte (infra/ferretdb/0013, 0014).

Patch 0014 decodes FerretDB's stored JSON (sjson) without a json.Decoder per nesting level and takes a
string without escape sequences as the bytes between its quotes; 0013 lets the SQLite driver's C
allocator reuse an emptied page instead of unmapping it (each savepoint's 64 KiB sub-journal chunk).
Neither may change a stored or answered byte: these tests write documents with every kind of string
(escapes, control characters, non-ASCII, quotes, backslashes), nested documents and arrays (FerretDB
stores no array directly in an array), binaries of many sizes, and compare the raw BSON read back (by find, by findAndModify, after operator updates
that decode the stored document) with what was written; and they run concurrent bulks of
compare-and-set replaces of large documents (savepoints that journal pages, allocations of every
size class) and check every stored byte afterwards. They run against whichever server the suite uses
(the test profile's FerretDB, or MongoDB on the Docker path).
"""
import datetime
import random
import threading

import bson
import pytest
from bson import Binary, Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne, ReturnDocument, UpdateOne

from tests.helpers import scratch_database

RAW = CodecOptions(document_class=RawBSONDocument)

STRINGS = [
    "", "plain ascii", "行政执法监督 案件", "emoji 😀 and é", 'a "quoted" word', "back\\slash", "new\nline\ttab\r",
    "control \x01\x1f chars", "line sep \u2028 para \u2029", "html <&> ' chars", "\u00ff\u0100", "ends with quote\"",
    "\\", '"', "x" * 5000, "混" * 3000,
]


@pytest.fixture
def db(servers):
    with scratch_database(servers, "decode", tz_aware=False, socket_timeout_ms=120000) as database:
        yield database


def _documents():
    rnd = random.Random(14)
    docs = []
    for i, s in enumerate(STRINGS):
        docs.append({
            "_id": f"d{i}", "s": s, "n": i, "big": Int64(2**40 + i), "x": i + 0.5, "ok": i % 2 == 0, "none": None,
            "at": datetime.datetime(2026, 12, 1, 6, i % 60, tzinfo=datetime.timezone.utc).replace(tzinfo=None),
            "oid": ObjectId(f"{i:024x}"), "bin": Binary(bytes(rnd.getrandbits(8) for _ in range(i * 37))),
            "nested": {"s": s, "deeper": {"list": [s, i, {"k": s, "a": [s]}, {}], "empty": {}, "none": []}},
            "arr": [s, {"s": s, "a": [s, {"s": s}]}, Int64(i), None, {}],
        })
    return docs


def test_documents_with_every_kind_of_string_read_back_byte_for_byte(db):
    docs = _documents()
    db.docs.insert_many(docs)
    raw = db.get_collection("docs", codec_options=RAW)
    for d in docs:
        got = raw.find_one({"_id": d["_id"]})
        assert got.raw == bson.encode(d), d["_id"]
    # a read of many documents at once (one cursor batch) and a read by a string field decode the same
    assert [g.raw for g in raw.find().sort("_id", 1)] == [bson.encode(d) for d in sorted(docs, key=lambda d: d["_id"])]
    assert raw.find_one({"s": 'a "quoted" word'}).raw == bson.encode(docs[4])


def test_operator_updates_and_find_and_modify_decode_the_stored_document_unchanged(db):
    docs = _documents()
    db.docs.insert_many(docs)
    raw = db.get_collection("docs", codec_options=RAW)
    res = db.docs.bulk_write([UpdateOne({"_id": d["_id"]}, {"$inc": {"n": 1}, "$set": {"t": d["s"] + "\u2028"}})
                              for d in docs], ordered=False)
    assert (res.matched_count, res.modified_count) == (len(docs), len(docs))
    for d in docs:
        want = dict(d, n=d["n"] + 1, t=d["s"] + "\u2028")
        assert raw.find_one({"_id": d["_id"]}).raw == bson.encode(want), d["_id"]
    got = raw.find_one_and_update({"_id": "d5"}, {"$push": {"arr": "back\\slash\x01"}}, return_document=ReturnDocument.AFTER)
    want = dict(docs[5], n=6, t=docs[5]["s"] + "\u2028", arr=docs[5]["arr"] + ["back\\slash\x01"])
    assert got.raw == bson.encode(want)


def test_concurrent_bulks_of_large_compare_and_set_replaces_keep_every_byte(db):
    # sizes cross the C allocator's size classes (up to 256 KiB slots) and the sub-journal's 64 KiB chunk
    sizes = [100, 900, 3000, 7000, 15000, 31000, 70000, 140000, 300000]
    threads_n, rounds, per = 3, 5, len(sizes)
    errors, final = [], {}

    def body(t, r, i):
        return bytes(((t * 31 + r * 7 + i + k) * 2654435761 >> 13) & 0xFF for k in range(sizes[i]))

    def worker(t):
        try:
            coll = db[f"aggs{t}"]
            coll.insert_many([{"_id": f"a{i}", "version": 0, "packed": Binary(body(t, 0, i))} for i in range(per)])
            for r in range(1, rounds + 1):
                res = coll.bulk_write([ReplaceOne({"_id": f"a{i}", "version": r - 1},
                                                  {"_id": f"a{i}", "version": r, "packed": Binary(body(t, r, i))})
                                       for i in range(per)], ordered=False)
                assert res.modified_count == per
            final[t] = list(coll.find().sort("_id", 1))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    for t in range(threads_n):
        want = sorted(({"_id": f"a{i}", "version": rounds, "packed": body(t, rounds, i)} for i in range(per)),
                      key=lambda d: d["_id"])
        assert final[t] == want
