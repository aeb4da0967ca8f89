"""A find's skip keeps MongoDB's answers when FerretDB applies it in SQL (infra/ferretdb/0008).

Patch 0008 sends `skip` to SQLite with the limit (`LIMIT n OFFSET k`, `LIMIT -1 OFFSET k` without a
limit) when the find has no filter and no sort, the case where the limit was pushed down already,
instead of decoding every skipped document. The case list's pages rely on it
(services/penalty/store.py `list_cases`: `find({}, {"_id": 0}).skip(k).limit(n)` on one partition).
These tests pin the rows and their order for: skip within, at and beyond the end, skip without a
limit, batches continued by getMore (batchSize), a negative limit (one batch), a projection, rows
deleted in between, a capped collection, and the finds that keep the general path (a filter, a
sort). They run against whichever server the suite uses (the test profile's FerretDB, or MongoDB
on the Docker path), so the figures are MongoDB's own.
"""

import pymongo
import pytest

from tests.helpers import scratch_database

ROWS = 300


@pytest.fixture
def db(servers):
    with scratch_database(servers, "skip", tz_aware=False) as database:
        yield database


@pytest.fixture
def col(db):
    c = db["rows"]
    docs = [{"_id": f"r{n:04d}", "n": n, "pad": "x" * 40} for n in range(ROWS)]
    for i in range(0, ROWS, 50):  # bulks of at most 50 (COMMON rules)
        c.insert_many(docs[i:i + 50])
    return c


def ns(cursor):
    return [d["n"] for d in cursor]


@pytest.mark.parametrize("skip, limit", [(1, 1), (120, 50), (250, 50), (299, 10), (0, 7), (100, 200)])
def test_skip_and_limit_give_the_rows_of_the_natural_order(col, skip, limit):
    whole = ns(col.find({}))
    assert whole == list(range(ROWS))
    assert ns(col.find({}).skip(skip).limit(limit)) == whole[skip:skip + limit]


@pytest.mark.parametrize("skip", [ROWS, ROWS + 1, 10**9])
def test_a_skip_at_or_beyond_the_end_gives_no_rows(col, skip):
    assert ns(col.find({}).skip(skip).limit(5)) == []
    assert ns(col.find({}).skip(skip)) == []


def test_a_skip_without_a_limit_gives_every_later_row_over_several_batches(col):
    # the first batch is 101 documents, the rest comes by getMore from the same cursor
    assert ns(col.find({}).skip(10)) == list(range(10, ROWS))
    assert ns(col.find({}).skip(10).batch_size(7)) == list(range(10, ROWS))


def test_get_more_continues_after_the_skipped_rows_without_skipping_again(col):
    cursor = col.find({}).skip(100).limit(150).batch_size(20)
    assert ns(cursor) == list(range(100, 250))
    # a first batch that ends exactly at the limit
    assert ns(col.find({}).skip(40).limit(20).batch_size(20)) == list(range(40, 60))


def test_a_negative_limit_is_one_batch_after_the_skip(col):
    assert ns(col.find({}).skip(10).limit(-5)) == [10, 11, 12, 13, 14]


def test_a_projection_keeps_the_rows_and_drops_the_fields(col):
    page = list(col.find({}, {"_id": 0, "pad": 0}).skip(123).limit(3))
    assert page == [{"n": 123}, {"n": 124}, {"n": 125}]


def test_rows_deleted_before_the_page_are_not_counted(col):
    col.delete_many({"n": {"$lt": 50, "$mod": [2, 0]}})  # 25 rows gone: 1, 3, ..., 49 stay
    col.insert_one({"_id": "late", "n": 1000})  # written last: last in the natural order
    whole = ns(col.find({}))
    assert whole[:3] == [1, 3, 5] and whole[-1] == 1000 and len(whole) == ROWS - 25 + 1
    for skip, limit in [(0, 30), (20, 10), (24, 3), (270, 10)]:
        assert ns(col.find({}).skip(skip).limit(limit)) == whole[skip:skip + limit]
    assert ns(col.find({}).skip(ROWS - 25)) == [1000]


def test_a_filter_or_a_sort_skips_the_matching_rows_in_their_order(col):
    # these keep FerretDB's general path: filter and sort first, then skip and limit
    assert ns(col.find({"n": {"$gte": 100}}).skip(10).limit(5)) == [110, 111, 112, 113, 114]
    assert ns(col.find({"n": {"$mod": [10, 0]}}).skip(3).limit(4)) == [30, 40, 50, 60]
    assert ns(col.find({}).sort("n", pymongo.DESCENDING).skip(10).limit(5)) == [289, 288, 287, 286, 285]
    assert ns(col.find({"n": {"$lt": 50}}).sort("n", pymongo.DESCENDING).skip(45).limit(10)) == [4, 3, 2, 1, 0]
    assert ns(col.find({"_id": "r0007"}).skip(1)) == []
    assert ns(col.find({"_id": "r0007"}).skip(0).limit(1)) == [7]


def test_a_capped_collection_pages_in_insertion_order(db):
    capped = db.create_collection("capped", capped=True, size=1 << 20)
    for i in range(0, 120, 40):
        capped.insert_many([{"n": n} for n in range(i, i + 40)])
    assert ns(capped.find({}).skip(55).limit(10)) == list(range(55, 65))
    assert ns(capped.find({}).skip(110)) == list(range(110, 120))
