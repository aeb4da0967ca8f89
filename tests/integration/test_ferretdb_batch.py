"""One write command's operations keep their answers and effects (infra/ferretdb/0010).

Patch 0010 runs all operations of one `update`, `delete` or `insert` command (of several) in one
SQLite transaction (a savepoint per operation) instead of one transaction per operation, and every
writing command takes the write mutex of patch 0002. These tests pin what must not change with it:
an operation sees the writes of the operations before it in the same bulk, a failing operation
undoes only itself and the ones before it stay written, an ordered bulk stops at its first error, an
unordered insert continues, and concurrent bulks (creating collections and indexes meanwhile) neither
lose updates nor hang. They run against whichever server the suite uses (the test profile's FerretDB,
or MongoDB on the Docker path): only what both answer alike is asserted.
"""
import threading

import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from tests.helpers import scratch_database


@pytest.fixture
def db(servers):
    with scratch_database(servers, "batch", tz_aware=False, socket_timeout_ms=60000) as database:
        yield database


def test_an_operation_sees_the_writes_of_the_operations_before_it_in_the_same_bulk(db):
    db.cases.insert_one({"_id": "c1", "version": 1, "n": 0})
    res = db.cases.bulk_write([
        ReplaceOne({"_id": "c1", "version": 1}, {"version": 2, "n": 1}),
        ReplaceOne({"_id": "c1", "version": 2}, {"version": 3, "n": 2}),  # matches only after the first
        ReplaceOne({"_id": "c1", "version": 2}, {"version": 9, "n": 9}),  # no longer matches
        UpdateOne({"_id": "c1"}, {"$inc": {"n": 10}}),
        UpdateOne({"_id": "c2"}, {"$max": {"n": 5}}, upsert=True),
        UpdateOne({"_id": "c2"}, {"$max": {"n": 3}}, upsert=True),  # sees the upserted 5
    ], ordered=False)
    assert (res.matched_count, res.modified_count, res.upserted_count) == (4, 3, 1)
    assert list(db.cases.find().sort("_id", 1)) == [{"_id": "c1", "version": 3, "n": 12}, {"_id": "c2", "n": 5}]


def test_an_ordered_bulk_stops_at_an_upserts_duplicate_key_and_keeps_the_operations_before_it(db):
    db.cases.insert_many([{"_id": f"c{i}", "version": 2, "n": i} for i in range(3)])
    # the raw command: FerretDB's answer to a failed update has no nModified, which pymongo's bulk expects
    res = db.command({"update": "cases", "ordered": True, "updates": [
        {"q": {"_id": "c0"}, "u": {"$inc": {"n": 10}}},
        {"q": {"_id": "c1", "version": 1}, "u": {"$set": {"n": 100}}, "upsert": True},  # inserts c1 again
        {"q": {"_id": "c2"}, "u": {"$inc": {"n": 10}}},
    ]})
    assert [e["code"] for e in res["writeErrors"]] == [11000]
    assert list(db.cases.find().sort("_id", 1)) == [
        {"_id": "c0", "version": 2, "n": 10}, {"_id": "c1", "version": 2, "n": 1}, {"_id": "c2", "version": 2, "n": 2}]
    db.cases.update_one({"_id": "c2"}, {"$inc": {"n": 1}})  # the server took the next write
    assert db.cases.find_one({"_id": "c2"})["n"] == 3


def test_an_unordered_insert_keeps_every_document_but_the_duplicate_and_a_later_command_sees_them(db):
    db.cases.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as caught:
        db.cases.bulk_write([InsertOne({"_id": i}) for i in (2, 1, 3, 4)], ordered=False)
    assert caught.value.details["nInserted"] == 3
    assert [(e["index"], e["code"]) for e in caught.value.details["writeErrors"]] == [(1, 11000)]
    res = db.cases.bulk_write([DeleteOne({"_id": 2}), DeleteMany({"_id": {"$gte": 3}}), DeleteOne({"_id": 2})])
    assert res.deleted_count == 3
    assert [d["_id"] for d in db.cases.find()] == [1]


def test_concurrent_bulks_creating_collections_and_indexes_lose_no_update_and_do_not_hang(db):
    rounds, ids, errors = 6, [f"k{i}" for i in range(120)], []

    def bulk_upserts():
        try:
            for _ in range(rounds):
                db.counters.bulk_write([UpdateOne({"_id": i}, {"$inc": {"n": 1}}, upsert=True) for i in ids],
                                       ordered=False)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def new_collections(k):
        try:
            for r in range(rounds):
                col = db[f"part_{k}_{r}"]
                col.insert_many([{"_id": j, "v": j} for j in range(50)])
                col.create_index("v")
                col.bulk_write([UpdateOne({"_id": j}, {"$set": {"v": -j}}) for j in range(50)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=bulk_upserts) for _ in range(3)]
    threads += [threading.Thread(target=new_collections, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert errors == []
    assert sorted((d["_id"], d["n"]) for d in db.counters.find()) == sorted((i, 3 * rounds) for i in ids)
    assert db["part_1_5"].find_one({"_id": 7}) == {"_id": 7, "v": -7}


def test_a_collection_created_inside_a_bulk_is_readable_by_other_clients_at_once(db):
    # the registry knows a new collection at once, so its table must be committed at once too (not
    # with the bulk's transaction): a reader in between got "no such table"
    names, errors, done = [f"fresh_{i}" for i in range(40)], [], threading.Event()

    def reader():
        while not done.is_set():
            for name in names:
                try:
                    list(db[name].find({"_id": 0}))
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for name in names:
            db[name].bulk_write([UpdateOne({"_id": j}, {"$set": {"v": j}}, upsert=True) for j in range(30)],
                                ordered=False)
    finally:
        done.set()
        t.join(timeout=60)
    assert errors == []
    assert db[names[-1]].count_documents({}) == 30
