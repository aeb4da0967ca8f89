"""What a killed bench run left, cleaned by the next one (services/simulator/bench_leftovers.py): the records and
the rules of the cleanup, with the database and the broker as recording fakes. The real thing — a bench killed with
SIGKILL, its suite still running, cleaned by the next bench — is tests/integration/test_bench_stopped.py."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.simulator import bench_leftovers as leftovers

SERVER = "mongodb://127.0.0.1:27017/"
AMQP = "amqp://guest:guest@127.0.0.1:5672/zhifa-bench-abc123"


class Calls:
    def __init__(self, fail_on: str | None = None):
        self.dropped, self.vhosts, self.stopped_prefixes, self.fail_on = [], [], [], fail_on

    def drop(self, prefix: str) -> None:
        if prefix == self.fail_on:
            raise ConnectionError("server went away")
        self.dropped.append(prefix)

    def delete_vhost(self, vhost: str) -> None:
        self.vhosts.append(vhost)

    def processes(self, record: dict) -> list[int]:
        self.stopped_prefixes.append(record["prefix"])
        return []


def gone(_pid: int) -> bool:
    return False


def test_a_run_records_itself_and_removes_the_record_after_its_cleanup(tmp_path):
    path = leftovers.register("abc123", prefix="zhifa_benchabc123_", mongo_uri=SERVER, vhost="zhifa-bench-abc123",
                              amqp_uri=AMQP, directory=tmp_path)
    record = json.loads(path.read_text())
    assert record["pid"] > 0 and record["prefix"] == "zhifa_benchabc123_" and record["vhost"] == "zhifa-bench-abc123"
    assert record["suite"] is True and record["kept"] is False and record["mongo_uri"] == SERVER
    leftovers.release(path)
    assert not path.exists()
    leftovers.release(path)  # (twice is no error)


def test_only_records_of_runs_that_are_gone_and_not_kept_are_abandoned(tmp_path):
    dead = leftovers.register("dead01", prefix="zhifa_benchdead01_", mongo_uri=SERVER, directory=tmp_path)
    live = leftovers.register("live01", prefix="zhifa_benchlive01_", mongo_uri=SERVER, directory=tmp_path)
    kept = leftovers.register("kept01", prefix="zhifa_benchkept01_", mongo_uri=SERVER, directory=tmp_path)
    leftovers.keep(kept)
    (tmp_path / "broken.json").write_text("{not json")
    for path, pid in ((dead, 101), (live, 102), (kept, 103)):
        path.write_text(json.dumps({**json.loads(path.read_text()), "pid": pid}))
    found = leftovers.abandoned(tmp_path, alive=lambda pid: pid == 102)
    assert [record["run_id"] for _, record in found] == ["dead01"]
    assert leftovers.abandoned(tmp_path / "none") == []


def test_cleaning_stops_the_suite_drops_its_databases_deletes_its_vhost_and_removes_the_record(tmp_path):
    leftovers.register("r1", prefix="zhifa_benchr1_", mongo_uri=SERVER, vhost="zhifa-bench-r1", amqp_uri=AMQP,
                       directory=tmp_path)
    leftovers.register("r2", prefix="zhifa_bench_raw_r2", mongo_uri=SERVER, directory=tmp_path)  # a running suite's
    calls = Calls()
    lines = leftovers.clean(SERVER, calls.drop, calls.delete_vhost, tmp_path, alive=gone, processes=calls.processes)
    assert calls.dropped == ["zhifa_benchr1_", "zhifa_bench_raw_r2"] and calls.vhosts == ["zhifa-bench-r1"]
    # only a run that started its suite has processes to stop: a running suite's DB_PREFIX is never looked for
    assert calls.stopped_prefixes == ["zhifa_benchr1_"]
    assert list(tmp_path.glob("*.json")) == [] and len(lines) == 2 and "cleaned what run r1" in lines[0], lines


def test_what_cannot_be_cleaned_now_stays_recorded_for_the_next_run(tmp_path):
    other = leftovers.register("o1", prefix="zhifa_bencho1_", mongo_uri="mongodb://10.0.0.9:27017/", directory=tmp_path)
    failing = leftovers.register("f1", prefix="zhifa_benchf1_", mongo_uri=SERVER, directory=tmp_path)
    vhosted = leftovers.register("v1", prefix="zhifa_benchv1_", mongo_uri=SERVER, vhost="zhifa-bench-v1",
                                 directory=tmp_path)
    foreign = leftovers.register("x1", prefix="zhifa_", mongo_uri=SERVER, directory=tmp_path)
    calls = Calls(fail_on="zhifa_benchf1_")
    lines = leftovers.clean(SERVER, calls.drop, None, tmp_path, alive=gone, processes=calls.processes)
    # another server's record is for a run on that server; a failed drop, a vhost without the management API and a
    # prefix that could name a live suite's databases are left, each with its reason
    assert other.exists() and failing.exists() and vhosted.exists() and foreign.exists()
    assert "zhifa_" not in calls.dropped
    text = "\n".join(lines)
    assert "left f1.json: ConnectionError: server went away" in text
    assert "left v1.json: vhost zhifa-bench-v1 needs the management API" in text
    assert "left x1.json: its prefix 'zhifa_' is not a bench run's" in text
    assert "o1" not in text


def test_a_pid_is_a_bench_only_while_a_bench_runs_under_it():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", leftovers.MARK])
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert leftovers.bench_alive(child.pid) and not leftovers.bench_alive(plain.pid)
    finally:
        child.kill(), plain.kill()
        child.wait(), plain.wait()
    assert not leftovers.bench_alive(child.pid)


def test_stop_ends_a_process_that_ignores_sigterm_with_sigkill():
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE)
    assert stubborn.stdout.readline().strip() == b"ready"
    leftovers.stop([stubborn.pid], wait=0.5)
    assert stubborn.wait(timeout=10) == -9
    leftovers.stop([stubborn.pid], wait=0)  # (gone already: no error)


@pytest.mark.parametrize("prefix", ["zhifa_benchr9_", "zhifa_benchdb_ab12cd"])
def test_the_records_directory_follows_bench_runs_dir(tmp_path, monkeypatch, prefix):
    monkeypatch.setenv("BENCH_RUNS_DIR", str(tmp_path / "runs"))
    path = leftovers.register("r9", prefix=prefix, mongo_uri=SERVER)
    assert path.parent == tmp_path / "runs" and json.loads(path.read_text())["prefix"] == prefix


def test_a_suites_record_stays_for_a_caller_that_cannot_find_its_processes(tmp_path):
    suite = leftovers.register("s1", prefix="zhifa_benchs1_", mongo_uri=SERVER, amqp_uri=AMQP, directory=tmp_path)
    calls = Calls()
    lines = leftovers.clean(SERVER, calls.drop, calls.delete_vhost, tmp_path, alive=gone)  # (bench_db: no processes)
    assert suite.exists() and calls.dropped == [] and lines == ["left s1.json: its suite's processes are found by `make bench`"]
