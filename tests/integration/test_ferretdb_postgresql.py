"""FerretDB on PostgreSQL (ZHIFA_FERRETDB_BACKEND=postgresql), on a private cluster and FerretDB of its own.

infra/ferretdb/0004: a find/update by `_id` reaches PostgreSQL as `_jsonb->'_id' = $1`, which the
collection's unique `_id` index serves. FerretDB v1.24 sent `_jsonb->$1 @> $2`, which no btree index
serves: every lookup scanned (and detoasted) the whole table. PostgreSQL's own plan, as FerretDB's
`explain` returns it, must show the index; and the kernel's compare-and-set write still matches
exactly one version.
"""
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pymongo
import pytest

from tests.helpers import free_tcp_port, stop_process, tcp_open, wait_for

ROOT = Path(__file__).resolve().parents[2]
FERRETDB = ROOT / ".run" / "bin" / "ferretdb"


def _as_pg() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.getuid() == 0 else []


@pytest.fixture
def ferretdb_on_postgresql():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    assert found, "PostgreSQL is not installed: run scripts/bootstrap.sh postgresql"
    assert FERRETDB.exists(), "FerretDB binary missing: run scripts/bootstrap.sh"
    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="zhifa-pg-"))  # not pytest's tmp_path: the postgres user must enter it
    base.chmod(0o755)
    data, sock, log = base / "data", base / "sock", base / "pg.log"
    sock.mkdir()
    log.touch()
    if os.getuid() == 0:
        shutil.chown(sock, "postgres")
        shutil.chown(base, "postgres")
        shutil.chown(log, "postgres")
    subprocess.run(_as_pg() + [str(bin_dir / "initdb"), "-D", str(data), "-U", "zhifa", "--auth=trust",
                                "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    pg = subprocess.Popen(_as_pg() + [str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=",
                                      "-c", f"unix_socket_directories={sock}", "-c", "port=5432"],
                          stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    ferret = None
    try:
        wait_for(lambda: (sock / ".s.PGSQL.5432").exists(), timeout=30)
        wait_for(lambda: subprocess.run(_as_pg() + [str(bin_dir / "createdb"), "-h", str(sock), "-U", "zhifa",
                                                    "ferretdb"], capture_output=True).returncode == 0, timeout=30)
        port = free_tcp_port()
        ferret = subprocess.Popen(
            [str(FERRETDB), "--handler=postgresql", f"--postgresql-url=postgres:///ferretdb?host={sock}&user=zhifa",
             f"--listen-addr=127.0.0.1:{port}", "--debug-addr=-", f"--state-dir={base}",
             "--telemetry=disable", "--log-level=error"],
            stdout=subprocess.DEVNULL, stderr=open(base / "ferretdb.log", "ab"))
        wait_for(lambda: tcp_open(port), timeout=20)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000)
        yield client
        client.close()
    finally:
        if ferret is not None:
            stop_process(ferret)
        stop_process(pg)
        shutil.rmtree(base, ignore_errors=True)


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
