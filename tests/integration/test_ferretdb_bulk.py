"""infra/ferretdb/0003: a bulk of ≥ 100 updates no longer hangs FerretDB (on a private instance).

Unpatched, FerretDB v1.24 kept every update's query open until the whole command returned; at the
100th update of one bulk (the SQLite pool's 100 connections) it waited for itself, holding the
read-modify-write mutex of patch 0002, and every later update waited forever. Run on a FerretDB of
its own so that a regression cannot hang the servers other tests share.
"""
import socket
import subprocess
import time
from pathlib import Path

import pymongo
from pymongo import ReplaceOne, UpdateOne

from tests.helpers import stop_process, wait_for

FERRETDB = Path(__file__).resolve().parents[2] / ".run" / "bin" / "ferretdb"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_bulk_of_hundreds_of_compare_and_set_updates_completes_and_the_server_stays_usable(tmp_path):
    assert FERRETDB.exists(), "FerretDB binary missing: run scripts/bootstrap.sh"
    port, state = _port(), tmp_path / "ferretdb"
    state.mkdir()
    proc = subprocess.Popen(
        [str(FERRETDB), "--handler=sqlite", f"--sqlite-url=file:{state}/", f"--listen-addr=127.0.0.1:{port}",
         "--debug-addr=-", f"--state-dir={state}", "--telemetry=disable", "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "ferretdb.log", "ab"))
    try:
        wait_for(lambda: _open(port), timeout=20)
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
