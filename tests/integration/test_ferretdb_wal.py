"""infra/ferretdb/0027: one-operation updates keep SQLite's WAL small (on a private instance).

Before the patch an update or findAndModify of one operation read on one pooled connection and committed on
another with that read still open, so the automatic checkpoint never reached the end of the WAL and the WAL
never restarted while only such commands wrote: ≈ 8 KB more per command (25 MB after this test's 3,000, six
times the auto-checkpoint size; a one-operation delete closed its read first and did not do it). The suite's
other writes hid it; a database that sees only single updates for a while did not. Run on a FerretDB of its
own: the WAL of a shared server depends on every other test's writes.
"""
import pymongo

from services.simulator.ports import free_port
from tests.helpers import start_ferretdb, stop_process, tcp_open, wait_for

AUTO_CHECKPOINT_BYTES = 1000 * 4096  # SQLite's default: a checkpoint once the WAL holds 1,000 pages
WRITES = 3000


def test_one_operation_updates_let_the_wal_restart(tmp_path):
    port, state = free_port(), tmp_path / "ferretdb"
    proc = start_ferretdb(tmp_path, port, state)
    try:
        wait_for(lambda: tcp_open(port), timeout=20)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000,
                                     socketTimeoutMS=20000)
        col = client.walcheck.docs
        col.insert_many([{"_id": f"k{i}", "n": 0, "m": 0} for i in range(500)])
        wal = state / "walcheck.sqlite-wal"
        largest = 0
        for i in range(WRITES):  # nothing but one-operation updates (an insert reads nothing: it lets the WAL restart)
            if i % 2:
                col.update_one({"_id": f"k{i % 500}"}, {"$inc": {"n": 1}})
            else:
                col.find_one_and_update({"_id": f"k{i % 500}"}, {"$inc": {"m": 1}})
            if i % 100 == 99:
                largest = max(largest, wal.stat().st_size)
        assert sum(d["n"] + d["m"] for d in col.find({})) == WRITES  # every update applied once
        client.close()
        # the WAL restarts: it stays about the auto-checkpoint size instead of growing with every write
        assert largest < 2 * AUTO_CHECKPOINT_BYTES, f"the WAL grew to {largest:,} bytes"
    finally:
        stop_process(proc)
