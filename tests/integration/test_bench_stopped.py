"""`make bench` stopped from outside (SIGTERM: a CI timeout, `kill`) stops the suite it started.

The bench starts every declared service process for its run (DB_PREFIX `zhifa_bench<run>_`). Before
the fifteenth session a SIGTERM ended the bench at once and left those nine processes running, still
connected to the broker (found after an interrupted run on the development machine). Now SIGTERM
leaves through the same `finally` blocks as Ctrl-C: the processes get their own SIGTERM and the run's
databases are dropped. Real RabbitMQ, FerretDB and service processes.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymongo

from services.simulator.bench import find_service_processes
from tests.helpers import bench_env


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        return b"(zombie)" not in Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return False


def test_sigterm_stops_the_suite_the_bench_started(zhifa_config, tmp_path):
    env = bench_env(zhifa_config)
    log_path = tmp_path / "bench.log"
    with open(log_path, "wb") as log:
        bench = subprocess.Popen([sys.executable, "-m", "services.simulator.bench", "--start-suite", "yes",
                                  "--events", "300", "--duration", "0", "--raw-events", "50", "--max-seconds", "60",
                                  "--out", str(tmp_path / "bench.json")],
                                 env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    prefix = None
    try:
        deadline = time.monotonic() + 120
        while prefix is None and time.monotonic() < deadline and bench.poll() is None:
            found = re.search(r"started .* \(DB_PREFIX=(zhifa_bench\w+_),", log_path.read_text(errors="replace"))
            prefix = found.group(1) if found else None
            time.sleep(0.2)
        assert prefix is not None, f"the bench did not start its suite: {log_path.read_text()[-3000:]}"
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
        for pid in find_service_processes(zhifa_config["AMQP_URI"], prefix).values() if prefix else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
