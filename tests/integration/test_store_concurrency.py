"""The repository's compare-and-set on the real MongoDB-wire server: concurrent writers of one
aggregate never both win (FerretDB v1 needs our 0002 patch for this), and no fact is lost."""
import threading
import uuid

import pymongo

from services.kernel.aggregates import AggregateStore, Change


def test_versioned_replace_is_a_compare_and_set(servers):
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000)
    col = client[f"t{uuid.uuid4().hex[:8]}_cas"].docs
    try:
        wins = []
        for round_ in range(40):
            col.insert_one({"_id": f"a{round_}", "version": 1})
            barrier = threading.Barrier(2)

            def writer(tag):
                barrier.wait()
                res = col.replace_one({"_id": f"a{round_}", "version": 1}, {"version": 2, "by": tag})
                wins.append((round_, res.modified_count))

            threads = [threading.Thread(target=writer, args=(t,)) for t in "xy"]
            [t.start() for t in threads]
            [t.join() for t in threads]
        per_round = {}
        for r, n in wins:
            per_round[r] = per_round.get(r, 0) + n
        assert set(per_round.values()) == {1}, per_round  # exactly one writer won every race
    finally:
        client.drop_database(col.database.name)


def test_concurrent_updates_of_one_aggregate_lose_nothing(servers):
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000)
    db = client[f"t{uuid.uuid4().hex[:8]}_agg"]
    store = AggregateStore(db.aggs)
    try:
        def add(n):
            store.update("agg-1", lambda doc: Change({"items": list((doc or {}).get("items", [])) + [n]}))

        threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        doc = store.get("agg-1")
        assert sorted(doc["items"]) == list(range(16))
        assert doc["version"] == 16
    finally:
        client.drop_database(db.name)
