"""Documents are found, changed and removed by `_id` for every kind of `_id` (infra/ferretdb/0015).

FerretDB's SQLite tables index each document by the expression `_ferretdb_sjson->"_id"` (and a secondary
index on `dept` by `_ferretdb_sjson->"dept"`); patch 0015 answers that expression for a string member
without escapes, or an integer one, by scanning the stored JSON up to the member instead of converting
the whole text (NULL when the document has no such member), and 0006's compare-and-set guards the same
way. The index entries written through that fast path must be exactly what the general path computes,
or a find by `_id` misses, a duplicate is let in, or an index built before the patch no longer matches. The first test writes, finds, updates,
replaces (the compare-and-set path of 0006), deletes and duplicates documents under every kind of
`_id` on whichever server the suite uses; the second asks SQLite itself (Python's own SQLite, which has
no fast path) to check every index entry of those tables against its own evaluation of the expression
(`PRAGMA integrity_check`), when the server is a local FerretDB on SQLite.
"""
import datetime
import sqlite3
import urllib.parse
from pathlib import Path

import pytest
from bson import Binary, Int64, ObjectId
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tests.helpers import scratch_database

IDS = [
    "plain", "case-0001-abcdef", "", "行政执法 案件", "é😀", 'a "quoted" id', "back\\slash", "new\nline",
    "tab\there", "control \x01", "html <&>'", "/slash/", "\u2028", "x" * 3000, '{"_id":"inner"}', ",", "}",
    0, 1, -1, 42, 2**31 - 1, -(2**31), Int64(2**40), Int64(-(2**53)), 1.5, -0.25, 2.0, 1e300,
    ObjectId("0123456789abcdef01234567"), True, False, datetime.datetime(2026, 12, 2, 8, 30),
    {"dept": "cgj", "n": 1}, {"a": {"b": "c"}},
]


@pytest.fixture
def db(servers):
    with scratch_database(servers, "idindex", tz_aware=False) as database:
        yield database


DEPTS = ["cgj", 'q"uote', "back\\slash", "", 7, -3, 2.5, None, {"dept": "inner"}, ["cgj"], True, "行政执法"]


def _filler(i: int) -> dict:
    # fields before and after `_id` as FerretDB stores them: nested documents, arrays, strings with
    # escapes and brackets, so a scan that skipped a value wrongly would land on the wrong member; a
    # `dept` of every kind, or none (every third document), for the secondary index
    filler = {"s": f'v{i} "q" \\ {{[,]}}', "nested": {"_id": f"not-{i}", "dept": "nested", "list": [1, "]", {"x": "}"}]},
              "bin": Binary(bytes(range(i % 50))), "n": i}
    if i % 3:
        filler["dept"] = DEPTS[i % len(DEPTS)]
    return filler


def _write_everything(db) -> None:
    col = db.docs
    col.create_index("dept")  # (a secondary index: SQLite evaluates `_ferretdb_sjson->"dept"` per write)
    col.insert_many([{"_id": key, "version": 1, **_filler(i)} for i, key in enumerate(IDS)])
    for i, key in enumerate(IDS):
        found = col.find_one({"_id": key})
        assert found is not None and found["n"] == i, key
    assert sorted(d["n"] for d in col.find({"_id": {"$in": IDS}})) == list(range(len(IDS)))
    # operator updates (read, apply, write) and compare-and-set replaces (0006), in bulks and alone
    result = col.bulk_write([UpdateOne({"_id": key}, {"$set": {"version": 2, "u": i}}) for i, key in enumerate(IDS)])
    assert result.matched_count == len(IDS)
    result = col.bulk_write([ReplaceOne({"_id": key, "version": 2}, {"version": 3, "r": i, **_filler(i)})
                             for i, key in enumerate(IDS)])
    assert result.modified_count == len(IDS)
    assert col.replace_one({"_id": IDS[0], "version": 2}, {"version": 9}).matched_count == 0  # (a lost compare-and-set)
    for i, key in enumerate(IDS):
        doc = col.find_one({"_id": key})
        assert (doc["version"], doc["r"], doc["n"]) == (3, i, i), key
    for dept in ("cgj", 'q"uote', "back\\slash", "", 7, -3, 2.5, "行政执法"):  # (an array matches its elements)
        stored = [(i, DEPTS[i % len(DEPTS)]) for i in range(len(IDS)) if i % 3]
        expected = sorted(i for i, d in stored if (d == dept and type(d) is type(dept)) or (isinstance(d, list) and dept in d))
        assert sorted(d["n"] for d in col.find({"dept": dept})) == expected, dept
    # every `_id` is still unique: a second insert of each is refused, alone and in a bulk
    with pytest.raises(DuplicateKeyError):
        col.insert_one({"_id": IDS[1]})
    with pytest.raises(BulkWriteError) as refused:
        col.bulk_write([InsertOne({"_id": key}) for key in IDS], ordered=False)
    assert refused.value.details["nInserted"] == 0
    # upserts by `_id` create once
    db.side.bulk_write([UpdateOne({"_id": key}, {"$max": {"v": 1}}, upsert=True) for key in IDS])
    db.side.bulk_write([UpdateOne({"_id": key}, {"$max": {"v": 2}}, upsert=True) for key in IDS])
    assert db.side.count_documents({}) == len(IDS)
    assert all(d["v"] == 2 for d in db.side.find({}))
    # and deletes by `_id` find each one
    for key in IDS[::2]:
        assert col.delete_one({"_id": key}).deleted_count == 1, key
    assert col.count_documents({}) == len(IDS[1::2])


def test_every_kind_of_id_is_found_changed_and_removed_by_id(db):
    _write_everything(db)


def _sqlite_file(servers: dict, name: str) -> Path | None:
    from services.simulator.bench import database_server

    server = database_server(servers["MONGO_URI"])
    if server.get("backend") != "sqlite":
        return None
    for option in server.get("backend_options", []):
        url = option.split("=", 1)[1]
        directory = urllib.parse.urlsplit(url.removeprefix("file:")).path
        path = Path(directory) / f"{name}.sqlite"
        if path.is_file():
            return path
    return None


def test_sqlite_finds_each_index_entry_where_its_own_evaluation_puts_it(db, servers):
    _write_everything(db)
    path = _sqlite_file(servers, db.name)
    if path is None:
        pytest.skip("the server is not a local FerretDB on SQLite (MongoDB, or FerretDB elsewhere)")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert len(tables) >= 2  # (the documents and the upserted side collection, with FerretDB's metadata)
        # the general path's value for a row is what the patched server indexed under it
        checked = connection.execute("PRAGMA integrity_check").fetchall()
        assert checked == [("ok",)], checked[:5]
        indexed = 0
        for table in tables:
            sql = connection.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type = 'index'", (table,))
            if any(s and '->"_id"' in s.replace("'", '"') for (s,) in sql.fetchall()):
                indexed += connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        assert indexed == len(IDS[1::2]) + len(IDS)
    finally:
        connection.close()
