"""Compare-and-set replacements keep MongoDB's answers (infra/ferretdb/0006).

Patch 0006 serves `replace_one({_id, <field>: <scalar>, ...}, doc)` (no upsert) with one conditional
SQL UPDATE instead of reading and decoding the stored document, and falls back to FerretDB's general
path when that statement writes nothing. These tests pin what the kernel's versioned saves rely on
(matched_count), and the cases where the SQL condition alone would be wrong: numbers of another BSON
type (equal by value), values that only look like numbers in the stored JSON (booleans, dates,
strings), arrays, an unchanged document, the immutable `_id`. They run against whichever server the
suite uses (the test profile's FerretDB, or MongoDB on the Docker path).
"""
import datetime
import threading

import pytest
from bson import Int64, ObjectId
from pymongo import ReplaceOne
from pymongo.errors import WriteError

from tests.helpers import scratch_database


@pytest.fixture
def col(servers):
    with scratch_database(servers, "replace", tz_aware=False) as database:
        yield database["aggregates"]


def counts(res):
    return res.matched_count, res.modified_count


def test_a_versioned_save_matches_once_and_writes_the_replacement_after_the_id(col):
    col.insert_one({"_id": "c1", "version": 1, "state": {"stage": "filed"}, "old": True})
    assert counts(col.replace_one({"_id": "c1", "version": 1}, {"version": 2, "state": {"stage": "decided"}})) == (1, 1)
    stored = col.find_one({"_id": "c1"})
    assert stored == {"_id": "c1", "version": 2, "state": {"stage": "decided"}}
    assert list(stored) == ["_id", "version", "state"]
    assert type(stored["version"]) is int
    # the same save again is stale: nothing matches, nothing changes
    assert counts(col.replace_one({"_id": "c1", "version": 1}, {"version": 2, "state": {"stage": "x"}})) == (0, 0)
    assert col.find_one({"_id": "c1"})["state"] == {"stage": "decided"}
    assert counts(col.replace_one({"_id": "missing", "version": 1}, {"version": 2})) == (0, 0)
    assert col.find_one({"_id": "missing"}) is None


@pytest.mark.parametrize("stored, wanted", [
    (Int64(5), 5),        # int64 stored, int32 in the filter
    (5.0, 5),             # double stored
    (5, 5.0),             # double in the filter
    (5, Int64(5)),
    (Int64(2**40), 2**40),
])
def test_numbers_compare_by_value_across_types(col, stored, wanted):
    col.insert_one({"_id": "n", "version": stored})
    assert counts(col.replace_one({"_id": "n", "version": wanted}, {"version": 6})) == (1, 1)
    assert col.find_one({"_id": "n"}) == {"_id": "n", "version": 6}


@pytest.mark.parametrize("stored", [
    True,                                                        # stored as JSON true
    "5",
    datetime.datetime(1970, 1, 1, 0, 0, 0, 5000),                # a date is milliseconds in the stored JSON
    {"version": 5},
    None,
])
def test_a_number_does_not_match_what_only_looks_like_it(col, stored):
    value = 1 if stored is True else 5
    col.insert_one({"_id": "x", "version": stored})
    assert counts(col.replace_one({"_id": "x", "version": value}, {"version": 9})) == (0, 0)
    assert col.find_one({"_id": "x"})["version"] == stored


def test_an_array_element_matches_as_in_mongodb(col):
    col.insert_one({"_id": "a", "version": [1, 2]})
    assert counts(col.replace_one({"_id": "a", "version": 2}, {"version": 3})) == (1, 1)
    assert col.find_one({"_id": "a"}) == {"_id": "a", "version": 3}


def test_string_fields_and_object_ids_in_the_filter(col):
    oid = ObjectId()
    col.insert_many([{"_id": "s", "owner": "局A", "version": 1}, {"_id": oid, "owner": "b", "version": 1}])
    assert counts(col.replace_one({"_id": "s", "owner": "局B"}, {"owner": "局C"})) == (0, 0)
    assert counts(col.replace_one({"_id": "s", "owner": "局A", "version": 1}, {"owner": "局C", "version": 2})) == (1, 1)
    assert counts(col.replace_one({"_id": oid, "version": 1}, {"owner": "b", "version": 2})) == (1, 1)
    assert col.find_one({"_id": oid}) == {"_id": oid, "owner": "b", "version": 2}
    assert col.find_one({"_id": "s"}) == {"_id": "s", "owner": "局C", "version": 2}


def test_an_unchanged_document_is_matched_but_not_modified(col):
    col.insert_one({"_id": "u", "version": 3, "k": "v"})
    assert counts(col.replace_one({"_id": "u", "version": 3}, {"_id": "u", "version": 3, "k": "v"})) == (1, 0)
    # the replacement may repeat the same _id
    assert counts(col.replace_one({"_id": "u", "version": 3}, {"_id": "u", "version": 4, "k": "v"})) == (1, 1)
    assert col.find_one({"_id": "u"}) == {"_id": "u", "version": 4, "k": "v"}


def test_the_id_cannot_be_changed_by_a_replacement(col):
    col.insert_one({"_id": "i", "version": 1})
    with pytest.raises(WriteError) as err:
        col.replace_one({"_id": "i", "version": 1}, {"_id": "other", "version": 2})
    assert err.value.code == 66  # ImmutableField
    assert col.find_one({"_id": "i"}) == {"_id": "i", "version": 1}
    assert col.find_one({"_id": "other"}) is None


def test_a_bulk_of_versioned_saves_counts_only_the_current_ones(col):
    col.insert_many([{"_id": f"b{i}", "version": 1} for i in range(10)])
    ops = [ReplaceOne({"_id": f"b{i}", "version": 1 if i % 2 == 0 else 7}, {"version": 2, "i": i}) for i in range(10)]
    res = col.bulk_write(ops, ordered=False)
    assert (res.matched_count, res.modified_count) == (5, 5)
    assert sorted(d["_id"] for d in col.find({"version": 2})) == [f"b{i}" for i in range(0, 10, 2)]


def test_concurrent_saves_of_one_version_have_one_winner(col):
    col.insert_one({"_id": "race", "version": 1})
    wins, barrier = [], threading.Barrier(12)

    def save(n):
        barrier.wait()
        if col.replace_one({"_id": "race", "version": 1}, {"version": 2, "by": n}).matched_count == 1:
            wins.append(n)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert col.find_one({"_id": "race"}) == {"_id": "race", "version": 2, "by": wins[0]}


def test_dropped_renamed_and_recreated_collections_serve_their_own_documents(col):
    """infra/ferretdb/0007 keeps each SQLite connection's prepared statements by SQL text: statements on
    a dropped table must not serve (or fail on) its successor of the same name, nor a renamed one."""
    db = col.database
    for round_ in range(3):
        col.insert_many([{"_id": f"r{round_}-{i}", "version": round_} for i in range(5)])
        assert col.count_documents({}) == 5
        assert col.find_one({"_id": f"r{round_}-3"}) == {"_id": f"r{round_}-3", "version": round_}
        assert counts(col.replace_one({"_id": f"r{round_}-3", "version": round_}, {"version": 9})) == (1, 1)
        col.drop()
        assert col.find_one({"_id": f"r{round_}-3"}) is None
        assert list(col.find({})) == []
    col.insert_one({"_id": "moved", "version": 1})
    col.rename("renamed")
    assert col.find_one({"_id": "moved"}) is None
    assert db.renamed.find_one({"_id": "moved"}) == {"_id": "moved", "version": 1}
    assert counts(db.renamed.replace_one({"_id": "moved", "version": 1}, {"version": 2})) == (1, 1)
    col.insert_one({"_id": "moved", "version": 7})  # a new collection of the old name
    assert col.find_one({"_id": "moved"}) == {"_id": "moved", "version": 7}
    assert db.renamed.find_one({"_id": "moved"}) == {"_id": "moved", "version": 2}
