"""FerretDB on PostgreSQL (ZHIFA_FERRETDB_BACKEND=postgresql), on a private cluster and FerretDB of its own.

infra/ferretdb/0004: a find/update by `_id` reaches PostgreSQL as `_jsonb->'_id' = $1`, which the
collection's unique `_id` index serves. FerretDB v1.24 sent `_jsonb->$1 @> $2`, which no btree index
serves: every lookup scanned (and detoasted) the whole table. PostgreSQL's own plan, as FerretDB's
`explain` returns it, must show the index; and the kernel's compare-and-set write still matches
exactly one version. (The cluster and its FerretDB: tests/conftest.py, `ferretdb_on_postgresql`, one per
test session.)
"""


def _plan(explained: dict) -> str:
    return str(explained.get("queryPlanner"))


def test_a_lookup_by_id_uses_the_id_index_and_compare_and_set_still_matches_one_version(ferretdb_on_postgresql):
    db = ferretdb_on_postgresql.zhifa_pg
    col = db.cases
    col.insert_many([{"_id": f"511322-scjg-2025-{i:04d}", "version": 1, "text": "现场检查笔录" * 300}
                     for i in range(300)])
    explained = db.command("explain", {"find": "cases", "filter": {"_id": "511322-scjg-2025-0042"}})
    assert "Index Scan" in _plan(explained) and "Seq Scan" not in _plan(explained), _plan(explained)
    assert explained.get("pushdown") is True or "pushdown" not in explained
    explained = db.command("explain", {"find": "cases", "filter": {"_id": "511322-scjg-2025-0042", "version": 1}})
    assert "Index Scan" in _plan(explained), _plan(explained)

    assert col.find_one({"_id": "511322-scjg-2025-0042"})["version"] == 1
    first = col.replace_one({"_id": "511322-scjg-2025-0042", "version": 1}, {"version": 2, "text": "改"})
    second = col.replace_one({"_id": "511322-scjg-2025-0042", "version": 1}, {"version": 2, "text": "再改"})
    assert (first.matched_count, second.matched_count) == (1, 0)
    assert col.find_one({"_id": "511322-scjg-2025-0042"}) == {"_id": "511322-scjg-2025-0042", "version": 2, "text": "改"}
    assert col.count_documents({"version": 1}) == 299
