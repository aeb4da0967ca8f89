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

import time
from collections import Counter

import pymongo
import pytest

from services.launcher import processes
from services.simulator.bench import HandledCounter, workload
from services.simulator.publish import publish_amqp
from tests.helpers import gateway_and

EVENTS = 2000


@pytest.fixture
def two_personnel(zhifa_config, free_port, tmp_path):
    """A gateway process and two personnel processes on this test's vhost and databases."""
    personnel = processes()["personnel"]
    others = [(f"personnel-{n}", personnel, {"WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}) for n in (1, 2)]
    with gateway_and(zhifa_config, free_port, tmp_path, others, OUTBOX_SWEEP_SECONDS="1") as urls:
        yield urls


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
