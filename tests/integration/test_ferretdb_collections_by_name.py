"""A collection asked for by name keeps its answers when FerretDB looks it up alone (infra/ferretdb/0017).

Every find, aggregate, explain and collStats asks FerretDB's backend for its collection by name
(whether it is capped); patch 0017 answers that from one look-up instead of a sorted copy of every
collection of the database. These tests use a database of many collections, as the case list's is,
and check what depends on the answer: finds, counts and aggregates on collections that exist and do
not, in a database that does not exist, capped collections (a tailable cursor needs one; one on a
collection that is not capped is refused), and the listing by name and in full. They run against
whichever server the suite uses.
"""
import pytest
from pymongo import CursorType
from pymongo.errors import OperationFailure

from tests.integration.test_ferretdb_skip import db  # noqa: F401  (fixture: a database of its own, dropped after)

NAMES = [f"case_list.d{d:02d}.s{s}.{o}" for d in range(12) for s in range(5) for o in (0, 1)]  # 120


@pytest.fixture
def many(db):  # noqa: F811
    for i, name in enumerate(NAMES):
        db[name].insert_one({"_id": f"c{i}", "i": i})
    return db


def test_each_collection_is_found_among_many(many):
    for i, name in enumerate(NAMES[::7]):
        i = NAMES.index(name)
        assert list(many[name].find()) == [{"_id": f"c{i}", "i": i}]
        assert many[name].count_documents({}) == 1
        assert list(many[name].aggregate([{"$match": {"i": i}}, {"$count": "n"}])) == [{"n": 1}]


def test_a_missing_collection_reads_as_empty(many):
    assert list(many["case_list.nope.s0.0"].find()) == []
    assert many["case_list.nope.s0.0"].count_documents({}) == 0
    assert list(many["zzz"].aggregate([{"$match": {}}])) == []
    assert "case_list.nope.s0.0" not in many.list_collection_names()  # (a read creates nothing)


def test_a_missing_database_reads_as_empty(db):  # noqa: F811
    other = db.client[f"{db.name}_absent"]
    try:
        assert list(other.docs.find()) == []
        assert other.docs.count_documents({}) == 0
        assert other.list_collection_names() == []
    finally:
        db.client.drop_database(other.name)


def test_listing_by_name_and_in_full(many):
    assert many.list_collection_names(filter={"name": NAMES[17]}) == [NAMES[17]]
    assert many.list_collection_names(filter={"name": "absent"}) == []
    assert sorted(many.list_collection_names()) == sorted(NAMES)


def test_capped_settings_come_with_the_name(many):
    many.create_collection("capped_log", capped=True, size=1 << 20, max=5)
    many.capped_log.insert_many([{"_id": n} for n in range(3)])
    assert many.capped_log.options().get("capped") is True
    assert "capped" not in many[NAMES[0]].options()
    cursor = many.capped_log.find({}, cursor_type=CursorType.TAILABLE)
    assert [d["_id"] for d in cursor] == [0, 1, 2]  # tailable: allowed on a capped collection
    with pytest.raises(OperationFailure):  # and refused on one that is not
        list(many[NAMES[0]].find({}, cursor_type=CursorType.TAILABLE))
