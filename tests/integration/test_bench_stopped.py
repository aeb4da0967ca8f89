"""`make bench` stopped from outside (SIGTERM: a CI timeout, `kill`) stops the suite it started.

The bench starts every declared service process for its run (DB_PREFIX `zhifa_bench<run>_`). Before
the fifteenth session a SIGTERM ended the bench at once and left those nine processes running, still
connected to the broker (found after an interrupted run on the development machine). Now SIGTERM
leaves through the same `finally` blocks as Ctrl-C: the processes get their own SIGTERM and the run's
databases are dropped. Real RabbitMQ, FerretDB and service processes.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymongo

from services.simulator.bench import find_service_processes, suite_process_pids
from tests.helpers import bench_env, run_bench


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        return b"(zombie)" not in Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return False


def start_bench(env: dict, tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """A bench that starts its own suite, its output in `<name>.log` (a run long enough to be stopped midway)."""
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        bench = subprocess.Popen([sys.executable, "-m", "services.simulator.bench", "--start-suite", "yes",
                                  "--events", "300", "--duration", "0", "--raw-events", "50", "--max-seconds", "60",
                                  "--out", str(tmp_path / f"{name}.json")],
                                 env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return bench, log_path


def suite_started(bench: subprocess.Popen, log_path: Path) -> tuple[str, str]:
    """The DB_PREFIX and run id of the suite the bench logs it started (waiting up to two minutes)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and bench.poll() is None:
        found = re.search(r"started .* \(DB_PREFIX=(zhifa_bench(\w+?)_),", log_path.read_text(errors="replace"))
        if found:
            return found.group(1), found.group(2)
        time.sleep(0.2)
    raise AssertionError(f"the bench did not start its suite: {log_path.read_text()[-3000:]}")


def test_sigterm_stops_the_suite_the_bench_started(zhifa_config, tmp_path):
    bench, log_path = start_bench(bench_env(zhifa_config), tmp_path, "bench")
    prefix = None
    try:
        prefix, _ = suite_started(bench, log_path)
        started = find_service_processes(zhifa_config["AMQP_URI"], prefix)
        assert len(started) >= 3, f"expected the suite's processes under {prefix}, found {started}"

        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=90) == 143
        left = [pid for pid in started.values() if _alive(pid)]
        assert left == [], f"suite processes still running after the bench was stopped: {left}"
        client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
        try:
            assert [n for n in client.list_database_names() if n.startswith(prefix)] == []
        finally:
            client.close()
    finally:
        if bench.poll() is None:
            bench.kill()
        for _, pid in suite_process_pids(zhifa_config["AMQP_URI"], prefix) if prefix else []:  # (replicas too)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_what_a_bench_killed_with_sigkill_left_is_cleaned_by_the_next_run(zhifa_config, tmp_path):
    """SIGKILL gives the bench no `finally`: its suite keeps running and its databases stay. The run's record
    (services/simulator/bench_leftovers.py) lets the next bench stop those processes and drop those databases."""
    runs = tmp_path / "runs"
    env = {**bench_env(zhifa_config), "BENCH_RUNS_DIR": str(runs)}
    first, log_path = start_bench(env, tmp_path, "first")
    prefix, started = None, {}
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
    try:
        prefix, run_id = suite_started(first, log_path)
        started = find_service_processes(zhifa_config["AMQP_URI"], prefix)
        assert len(started) >= 3, f"expected the suite's processes under {prefix}, found {started}"
        assert json.loads((runs / f"{run_id}.json").read_text())["prefix"] == prefix

        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -9
        time.sleep(1)
        assert all(_alive(pid) for pid in started.values()), "SIGKILL left the suite running, as it did before"
        assert [n for n in client.list_database_names() if n.startswith(prefix)], "and its databases"

        second = run_bench(["--start-suite", "yes", "--pairs", "1", "--events", "60", "--duration", "0",
                            "--raw-events", "30", "--raw-rounds", "1", "--max-seconds", "60",
                            "--out", str(tmp_path / "second.json")], env, timeout=300)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert f"leftovers: cleaned what run {run_id} " in second.stderr + second.stdout, second.stderr[-3000:]
        assert [pid for pid in started.values() if _alive(pid)] == []
        assert [n for n in client.list_database_names() if n.startswith(prefix)] == []
        assert list(runs.glob("*.json")) == []  # the first run's record cleaned, the second's released
    finally:
        client.close()
        if first.poll() is None:
            first.kill()
        for _, pid in suite_process_pids(zhifa_config["AMQP_URI"], prefix) if prefix else []:  # (replicas too)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
