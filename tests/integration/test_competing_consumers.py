"""Competing consumers: two `nameko run` processes of the personnel service share one queue's work.

Scaling a service out (docker-compose `--scale`, a Kubernetes Deployment's replicas) starts more
processes of it; nameko's event handlers of one service consume one shared queue, so RabbitMQ
hands each message to one of them. This shows, on real RabbitMQ and FerretDB and through the real
ingress (a gateway process), that both processes do work and that under a stream of a few thousand
simulated events every fact is applied exactly once: the fact ids in the aggregate documents are
all distinct and are exactly the events published (two processes writing the same officer race
on the aggregate's version; the loser re-reads and re-applies, never twice).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pymongo
import pytest

from services.launcher import command, processes, wait_healthy
from services.simulator.bench import HandledCounter, workload
from services.simulator.publish import publish_amqp

EVENTS = 2000


@pytest.fixture
def two_personnel(zhifa_config, free_port, tmp_path):
    """A gateway process and two personnel processes on this test's vhost and databases."""
    from services.kernel.messaging import declare_topology

    declare_topology(zhifa_config["AMQP_URI"])
    table = processes()
    base = {**os.environ, "AMQP_URI": zhifa_config["AMQP_URI"], "MONGO_URI": zhifa_config["MONGO_URI"],
            "DB_PREFIX": zhifa_config["DB_PREFIX"], "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "ACCESS_LOG_LEVEL": "WARNING", "OUTBOX_SWEEP_SECONDS": "1",
            "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started: dict[str, tuple[subprocess.Popen, str]] = {}
    gateway_addr = f"127.0.0.1:{free_port()}"
    plan = [("gateway", {"WEB_SERVER_ADDRESS": gateway_addr, "METRICS_PORT": "0"}, f"http://{gateway_addr}")]
    for n in (1, 2):
        port = free_port()
        plan.append((f"personnel-{n}", {"METRICS_PORT": str(port), "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"},
                     f"http://127.0.0.1:{port}"))
    try:
        for name, extra, url in plan:
            log = open(tmp_path / f"{name}.log", "wb")
            proc = subprocess.Popen(command(table[name.split("-")[0]]), env={**base, **extra}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            started[name] = (proc, url)
        for name, (proc, url) in started.items():
            assert wait_healthy(f"{url}/health", timeout=90, proc=proc), \
                f"{name} did not start: {(tmp_path / (name + '.log')).read_text()[-2000:]}"
        yield {name: url for name, (proc, url) in started.items()}
    finally:
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_processes_share_the_work_and_apply_each_event_once(zhifa_config, two_personnel):
    events, info = workload(EVENTS, ["personnel"], seed=14, run_id=zhifa_config["DB_PREFIX"][:6])
    assert set(info["by_service"]) == {"personnel"}
    counters = {n: HandledCounter({"personnel": f"{two_personnel[n]}/metrics"}) for n in ("personnel-1", "personnel-2")}
    before = {n: c() for n, c in counters.items()}

    stats = publish_amqp(events, zhifa_config["AMQP_URI"])
    assert stats.confirmed == len(events) and stats.nacked == 0

    def handled() -> dict[str, int]:
        return {n: (c() or 0) - (before[n] or 0) for n, c in counters.items()}

    deadline = time.monotonic() + 150
    while sum(handled().values()) < len(events) and time.monotonic() < deadline:
        time.sleep(0.5)
    per_process = handled()

    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
    db = client[f"{zhifa_config['DB_PREFIX']}personnel"]
    fact_ids = [fid for name in ("officers", "agencies")
                for doc in db[name].find({}, {"fact_ids": 1, "_id": 0}) for fid in doc.get("fact_ids") or ()]
    client.close()

    twice = [fid for fid, n in Counter(fact_ids).items() if n > 1]
    assert twice == [], f"applied more than once: {twice[:5]}"
    assert set(fact_ids) == {e["event_id"] for e in events}, \
        f"{len(set(fact_ids))} of {len(events)} facts stored (handled per process: {per_process})"
    # both processes took part (RabbitMQ spreads one shared queue's messages over its consumers),
    # and between them they handled each event once (a handler that lost a version race retries inside)
    print(f"handled per process: {per_process}")
    assert all(n > 0 for n in per_process.values()), per_process
    assert sum(per_process.values()) == len(events), per_process
