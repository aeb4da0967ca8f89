"""Racing writers of one document lose nothing and duplicate nothing (infra/ferretdb/0002, 0010).

Patch 0002 made FerretDB's read-modify-write commands atomic on SQLite by serialising them (one write
mutex; 0010 puts inserts and the commands that create or drop collections and indexes under it too).
These tests race several threads on one document in each of two databases at the same time (and one
thread creating and dropping collections and indexes in a third): compare-and-set updates in rounds
where every writer read the same version (a replacement, which 0006 writes without reading, and an
update with operators, which reads, applies and writes back), findAndModify counters, and upserts by
a field that is not `_id`. Any overlap of two writers of one document shows up as a round with two
winners, a doubled or skipped number, or a duplicate key: a build without the mutex fails all three
(docs/bench/history.md, HA, seventh session). They run against whichever server the suite uses (the test
profile's FerretDB, or MongoDB on the Docker path).
"""
import threading
import uuid

import pymongo
import pytest
from pymongo import ReturnDocument

THREADS = 6
STEPS = 25  # successful steps per thread


@pytest.fixture
def client(servers):
    c = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=5000, socketTimeoutMS=60000,
                            maxPoolSize=4 * THREADS)
    names = [f"t{uuid.uuid4().hex[:8]}_wmu{k}" for k in range(3)]
    yield c, names
    for name in names:
        c.drop_database(name)
    c.close()


def race(work, dbs):
    """Runs work(db, thread) in THREADS threads per database, all at once; returns the errors."""
    errors, start = [], threading.Barrier(THREADS * len(dbs))

    def run(db, t):
        try:
            start.wait(timeout=30)
            work(db, t)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(db, t)) for db in dbs for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a writer hangs"
    return errors


def test_compare_and_set_steps_of_racing_writers_never_both_match(client):
    c, names = client
    dbs = [c[names[0]], c[names[1]]]
    won = {(db.name, kind): [] for db in dbs for kind in ("replace", "operators")}
    rounds = {db.name: threading.Barrier(THREADS) for db in dbs}
    for db in dbs:
        db.cases.insert_many([{"_id": "r", "version": 1, "n": 0}, {"_id": "o", "version": 1, "n": 0}])

    def work(db, t):
        # in each round every thread of the database reads the same version, then all try to step it
        for kind, _id in (("replace", "r"), ("operators", "o")):
            for _ in range(STEPS):
                cur = db.cases.find_one({"_id": _id})
                v = cur["version"]
                rounds[db.name].wait(timeout=30)
                if kind == "replace":
                    res = db.cases.replace_one({"_id": _id, "version": v}, {"version": v + 1, "n": cur["n"] + 1})
                else:
                    res = db.cases.update_one({"_id": _id, "version": v},
                                              {"$set": {"version": v + 1}, "$inc": {"n": 1}})
                assert res.matched_count == res.modified_count
                if res.modified_count:
                    won[(db.name, kind)].append(v)
                rounds[db.name].wait(timeout=30)

    assert race(work, dbs) == []
    for db in dbs:
        for kind, _id in (("replace", "r"), ("operators", "o")):
            # one winner per round, each step in the document
            assert sorted(won[(db.name, kind)]) == list(range(1, STEPS + 1)), (db.name, kind)
            assert db.cases.find_one({"_id": _id}) == {"_id": _id, "version": STEPS + 1, "n": STEPS}


def test_find_and_modify_counters_and_upserts_by_a_field_neither_lose_nor_duplicate(client):
    c, names = client
    dbs = [c[names[0]], c[names[1]]]
    seqs = {db.name: [] for db in dbs}
    keys = [f"k{i}" for i in range(5)]

    def work(db, t):
        for _ in range(STEPS):
            doc = db.counters.find_one_and_update({"_id": "seq"}, {"$inc": {"n": 1}}, upsert=True,
                                                  return_document=ReturnDocument.AFTER)
            seqs[db.name].append(doc["n"])
        for k in keys:  # every thread upserts every key: one document per key, counted by all
            db.refs.update_one({"key": k}, {"$inc": {"n": 1}}, upsert=True)

    assert race(work, dbs) == []
    for db in dbs:
        # each findAndModify saw its own increment: no number twice, none skipped
        assert sorted(seqs[db.name]) == list(range(1, THREADS * STEPS + 1))
        assert db.counters.find_one({"_id": "seq"})["n"] == THREADS * STEPS
        refs = sorted((d["key"], d["n"]) for d in db.refs.find({}, {"_id": 0}))
        assert refs == [(k, THREADS) for k in keys]


def test_writers_of_two_databases_and_a_third_creating_collections_and_indexes_all_finish(client):
    c, names = client
    dbs, ddl = [c[names[0]], c[names[1]]], c[names[2]]
    ddl_errors, stop = [], threading.Event()

    def create_and_drop():
        try:
            r = 0
            while not stop.is_set() and r < 40:
                col = ddl[f"part_{r}"]
                col.insert_many([{"_id": j, "v": j} for j in range(20)])
                col.create_index("v")
                if r % 2:
                    col.drop()
                r += 1
        except Exception as e:  # noqa: BLE001 - reported below
            ddl_errors.append(e)

    def work(db, t):
        for i in range(STEPS):
            # an upsert into a new collection creates it (the metadata registry) inside a write command
            db[f"new_{t}_{i % 5}"].update_one({"_id": "x"}, {"$inc": {"n": 1}}, upsert=True)
            db.shared.update_one({"_id": "x"}, {"$inc": {"n": 1}}, upsert=True)

    side = threading.Thread(target=create_and_drop)
    side.start()
    try:
        errors = race(work, dbs)
    finally:
        stop.set()
        side.join(timeout=120)
    assert not side.is_alive(), "the collection creator hangs"
    assert errors == [] and ddl_errors == []
    for db in dbs:
        assert db.shared.find_one({"_id": "x"})["n"] == THREADS * STEPS
        assert sum(db[f"new_{t}_{j}"].find_one({"_id": "x"})["n"] for t in range(THREADS) for j in range(5)) \
            == THREADS * STEPS
    # the odd rounds were dropped; every even round's collection is whole, with its index
    parts = ddl.list_collection_names()
    assert parts and all(int(p.split("_")[1]) % 2 == 0 for p in parts)
    for p in parts:
        assert ddl[p].count_documents({}) == 20
        assert "v_1" in ddl[p].index_information()
