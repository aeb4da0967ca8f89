"""`_id: {$in: [...]}` keeps MongoDB's answers when FerretDB reads it through the _id index (infra/ferretdb/0012).

Patch 0012 hands SQLite an `_id` filter `{$in: [strings or ObjectIDs]}` as an index look-up instead of
reading every document; FerretDB still applies the whole filter to the rows SQLite returns. These
tests compare each answer with the same query written so that no backend pushes it down (inside a
top-level `$and`: the filter has no `_id` field, the general path reads every document) and with the
documents expected in Python: mixed types, duplicates, missing ids, an empty list, other filter
fields, projections, sort/skip/limit, count, update and delete. On FerretDB with SQLite, explain shows
the index search. They run against whichever server the suite uses.
"""
import pytest
from bson import ObjectId

from tests.helpers import is_ferretdb
from tests.integration.test_ferretdb_skip import db  # noqa: F401  (fixture: a database of its own, dropped after)

OIDS = [ObjectId(f"{n:024x}") for n in range(1, 6)]
STRINGS = [{"_id": f"s{n:03d}", "n": n, "even": n % 2 == 0} for n in range(200)]
OTHERS = [{"_id": oid, "n": 1000 + i, "even": i % 2 == 0} for i, oid in enumerate(OIDS)] + \
    [{"_id": 7, "n": 2000, "even": False}, {"_id": 7.5, "n": 2001, "even": False},
     {"_id": "日本-<&>\u2028", "n": 2002, "even": True}]


@pytest.fixture
def col(db):  # noqa: F811
    docs = STRINGS + OTHERS
    while docs:  # bulks of at most 50
        db.docs.insert_many(docs[:50])
        docs = docs[50:]
    return db.docs


def scanned(col, filter_, *args, **kwargs):
    """The same find on the general path (a top-level $and has no `_id` field to push down)."""
    return list(col.find({"$and": [filter_]}, *args, **kwargs))


def by_id(docs):
    return sorted(docs, key=lambda d: (type(d["_id"]).__name__, str(d["_id"])))


@pytest.mark.parametrize("ids, expected_ns", [
    (["s001", "s150", "s199"], [1, 150, 199]),
    (["s001", "s001", "s002", "s001"], [1, 2]),  # duplicates: each document once
    (["missing", "s010", "also-missing"], [10]),  # missing ids read as missing
    (["missing"], []),
    ([], []),  # matches nothing
    ([OIDS[0], OIDS[3], "s005"], [1000, 1003, 5]),  # ObjectIDs and strings mixed
    ([str(OIDS[0])], []),  # a string with an ObjectID's hex: not the ObjectID
    ([OIDS[0]], [1000]),
    (["日本-<&>\u2028", "s000"], [0, 2002]),  # escapes in the stored JSON text
    ([7, "s003"], [3, 2000]),  # a number: the general path, same answer
    ([7.0], [2000]),  # 7.0 matches the int 7 (MongoDB compares numbers by value)
    ([None, "s004"], [4]),
])
def test_in_finds_exactly_the_listed_ids(col, ids, expected_ns):
    found = list(col.find({"_id": {"$in": ids}}))
    assert sorted(d["n"] for d in found) == sorted(expected_ns)
    assert by_id(found) == by_id(scanned(col, {"_id": {"$in": ids}}))
    assert col.count_documents({"_id": {"$in": ids}}) == len(expected_ns)


def test_other_filter_fields_still_apply(col):
    ids = [f"s{n:03d}" for n in range(0, 40, 3)] + [OIDS[1], OIDS[2]]
    for filter_ in ({"_id": {"$in": ids}, "even": True}, {"even": False, "_id": {"$in": ids}},
                    {"_id": {"$in": ids}, "n": {"$gte": 30}}, {"_id": {"$in": ids}, "n": {"$gt": 10**6}}):
        found = list(col.find(filter_))
        expected = [d for d in scanned(col, filter_)]
        assert by_id(found) == by_id(expected)
    assert sorted(d["n"] for d in col.find({"_id": {"$in": ids}, "even": True})) == \
        [n for n in range(0, 40, 3) if n % 2 == 0] + [1002]


def test_other_operators_next_to_in_keep_the_general_path(col):
    filter_ = {"_id": {"$in": ["s001", "s002", "s003"], "$nin": ["s002"]}}
    assert sorted(d["n"] for d in col.find(filter_)) == [1, 3]
    assert sorted(d["n"] for d in col.find({"_id": {"$in": ["s001", "s002"], "$ne": "s001"}})) == [2]


def test_projection_sort_skip_and_limit(col):
    ids = [f"s{n:03d}" for n in (50, 3, 120, 77, 9, 199)]
    assert list(col.find({"_id": {"$in": ids}}, {"_id": 0, "n": 1}).sort("n", -1)) == \
        [{"n": n} for n in (199, 120, 77, 50, 9, 3)]
    assert [d["n"] for d in col.find({"_id": {"$in": ids}}).sort("n", 1).skip(2).limit(3)] == [50, 77, 120]
    assert [d["n"] for d in col.find({"_id": {"$in": ids}}).sort("_id", 1).limit(2)] == [3, 9]
    assert list(col.find({"_id": {"$in": ids}}, {"even": 1}).sort("_id", 1).limit(1)) == [{"_id": "s003", "even": False}]


def test_many_ids_over_several_batches(col):
    ids = [f"s{n:03d}" for n in range(0, 200, 1)] + [f"none{n}" for n in range(300)]
    assert sorted(d["n"] for d in col.find({"_id": {"$in": ids}}).batch_size(7)) == list(range(200))


def test_update_and_delete_with_in(col):
    ids = ["s010", "s011", OIDS[4], "missing"]
    assert col.update_many({"_id": {"$in": ids}}, {"$set": {"marked": True}}).modified_count == 3
    assert sorted(d["n"] for d in col.find({"marked": True})) == [10, 11, 1004]
    assert col.delete_many({"_id": {"$in": ids}, "n": {"$lt": 1000}}).deleted_count == 2
    assert sorted(d["n"] for d in col.find({"marked": True})) == [1004]
    assert col.count_documents({}) == 200 + len(OIDS) + 3 - 2


def test_in_on_an_empty_or_missing_collection(db):  # noqa: F811
    assert list(db["nothing"].find({"_id": {"$in": ["a", "b"]}})) == []
    db["empty"].insert_one({"_id": "x"})
    db["empty"].delete_one({"_id": "x"})
    assert list(db["empty"].find({"_id": {"$in": ["x"]}})) == []


def _is_ferretdb_sqlite(db):
    if not is_ferretdb(db):
        return False
    plan = db.command("explain", {"find": "docs", "filter": {"_id": "s001"}}).get("queryPlanner") or {}
    return any("USING INDEX" in str(row) for row in plan.get("Plan", []))  # (PostgreSQL's plan reads otherwise)


def test_ferretdb_reads_in_through_the_id_index(col, db):  # noqa: F811
    if not _is_ferretdb_sqlite(db):
        pytest.skip("the query plan is FerretDB with SQLite's")
    plan = db.command("explain", {"find": "docs", "filter": {"_id": {"$in": ["s001", OIDS[0]]}}})
    assert plan["filterPushdown"] is True
    assert any("SEARCH" in row and "USING INDEX" in row for row in plan["queryPlanner"]["Plan"])
    assert not [row for row in plan["queryPlanner"]["Plan"] if "SCAN" in row and "json_each" not in row]
    # a number keeps the general path (MongoDB compares 7 with 7.0): a scan
    plan = db.command("explain", {"find": "docs", "filter": {"_id": {"$in": ["s001", 7]}}})
    assert plan["filterPushdown"] is False
    assert [row for row in plan["queryPlanner"]["Plan"] if "SCAN" in row]
