"""infra/ferretdb/0003: a bulk of ≥ 100 updates no longer hangs FerretDB (on a private instance).

Unpatched, FerretDB v1.24 kept every update's query open until the whole command returned; at the
100th update of one bulk (the SQLite pool's 100 connections) it waited for itself, holding the
read-modify-write mutex of patch 0002, and every later update waited forever. Run on a FerretDB of
its own so that a regression cannot hang the servers other tests share.
"""
import os
import subprocess
import time
from pathlib import Path

import pymongo
from pymongo import ReplaceOne, UpdateOne

from tests.helpers import free_tcp_port, stop_process, tcp_open, wait_for

# ZHIFA_TEST_FERRETDB_BIN: another build to try (a new patch before it replaces .run/bin/ferretdb)
FERRETDB = Path(os.environ.get("ZHIFA_TEST_FERRETDB_BIN")
                or Path(__file__).resolve().parents[2] / ".run" / "bin" / "ferretdb")


def test_a_bulk_of_hundreds_of_compare_and_set_updates_completes_and_the_server_stays_usable(tmp_path):
    assert FERRETDB.exists(), "FerretDB binary missing: run scripts/bootstrap.sh"
    port, state = free_tcp_port(), tmp_path / "ferretdb"
    state.mkdir()
    proc = subprocess.Popen(
        [str(FERRETDB), "--handler=sqlite", f"--sqlite-url=file:{state}/", f"--listen-addr=127.0.0.1:{port}",
         "--debug-addr=-", f"--state-dir={state}", "--telemetry=disable", "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "ferretdb.log", "ab"))
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
