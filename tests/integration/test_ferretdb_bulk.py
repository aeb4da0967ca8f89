"""infra/ferretdb/0003: a bulk of ≥ 100 updates no longer hangs FerretDB (on a private instance).

Unpatched, FerretDB v1.24 kept every update's query open until the whole command returned; at the
100th update of one bulk (the SQLite pool's 100 connections) it waited for itself, holding the
read-modify-write mutex of patch 0002, and every later update waited forever. Run on a FerretDB of
its own so that a regression cannot hang the servers other tests share.
"""
import time

import pymongo
from pymongo import ReplaceOne, UpdateOne

from services.simulator.ports import free_port
from tests.helpers import start_ferretdb, stop_process, tcp_open, wait_for


def test_a_bulk_of_hundreds_of_compare_and_set_updates_completes_and_the_server_stays_usable(tmp_path):
    port = free_port()
    proc = start_ferretdb(tmp_path, port)
    try:
        wait_for(lambda: tcp_open(port), timeout=20)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000,
                                     socketTimeoutMS=20000)
        col = client.zhifa.bulk
        n = 250
        col.insert_many([{"_id": f"a{i}", "version": 1, "n": i} for i in range(n)])
        started = time.monotonic()
        res = col.bulk_write([ReplaceOne({"_id": f"a{i}", "version": 1}, {"version": 2, "n": -i}) for i in range(n)],
                             ordered=False)
        assert res.matched_count == n and res.modified_count == n
        res = col.bulk_write([UpdateOne({"_id": f"a{i}", "version": 1}, {"$set": {"n": 0}}) for i in range(n)])
        assert res.matched_count == 0  # compare-and-set: no document is at version 1 any more
        assert time.monotonic() - started < 15
        col.update_one({"_id": "a0"}, {"$set": {"after": True}})  # and the next writer is not blocked
        assert col.find_one({"_id": "a0"}) == {"_id": "a0", "version": 2, "n": 0, "after": True}
        client.close()
    finally:
        stop_process(proc)
