"""Partitions: penalty as two `nameko run` processes, each applying the facts of the cases it owns.

With PARTITIONS=penalty=2 the gateway puts every admitted case fact into the bundle of the case's
partition (CRC-32 of the case id mod 2; services/kernel/partitions.py) and the process started with
PARTITION=i consumes that partition's queue. Shown here on real RabbitMQ and FerretDB through the real
ingress: each process handles exactly the facts of its own cases — the counts per process equal the
counts per partition worked out from the published events, which competing consumers would match only
by chance — and every fact is stored once. And when PARTITIONS is lowered, the facts a dropped partition's
queue still holds are applied by partition 0's process, with no operator step.
"""
from __future__ import annotations

import time
from collections import Counter

import pymongo
import pytest

from services.kernel import partitions
from services.launcher import processes
from services.simulator.bench import HandledCounter, workload
from services.simulator.publish import publish_amqp
from tests.helpers import gateway_and, launched, suite_env, wait_for

EVENTS = 1500


@pytest.fixture
def two_partitions(zhifa_config, free_port, tmp_path):
    """A gateway process and penalty's two partitions (the launcher's `penalty` and `penalty#2`)."""
    table = processes({"penalty": 2})
    assert (table["penalty"].partition, table["penalty#2"].partition) == (0, 1)
    others = [(key, table[key], {"PARTITION": str(table[key].partition)}) for key in ("penalty", "penalty#2")]
    with gateway_and(zhifa_config, free_port, tmp_path, others, PARTITIONS="penalty=2") as urls:
        yield urls


def test_each_partition_applies_exactly_the_facts_of_its_own_cases(zhifa_config, two_partitions):
    events, info = workload(EVENTS, ["penalty"], seed=26, run_id=zhifa_config["DB_PREFIX"][:6])
    assert set(info["by_service"]) == {"penalty"}
    owner = Counter(partitions.of(e["payload"]["case_id"], 2) for e in events)
    assert owner[0] and owner[1]  # both partitions have cases (so the check below can tell them apart)
    counters = {n: HandledCounter({"penalty": f"{two_partitions[n]}/metrics"}) for n in ("penalty", "penalty#2")}
    before = {n: c() or 0 for n, c in counters.items()}

    stats = publish_amqp(events, zhifa_config["AMQP_URI"])
    assert stats.confirmed == len(events) and stats.nacked == 0

    def handled() -> dict[str, int]:
        return {n: (c() or 0) - before[n] for n, c in counters.items()}

    deadline = time.monotonic() + 150
    while sum(handled().values()) < len(events) and time.monotonic() < deadline:
        time.sleep(0.5)
    per_process = handled()

    # partition i's process handled the facts of partition i's cases, and only those
    assert per_process == {"penalty": owner[0], "penalty#2": owner[1]}, (per_process, dict(owner))

    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
    docs = list(client[f"{zhifa_config['DB_PREFIX']}penalty"].cases.find({}, {"fact_ids": 1}))
    client.close()
    fact_ids = [fid for doc in docs for fid in doc.get("fact_ids") or ()]
    twice = [fid for fid, n in Counter(fact_ids).items() if n > 1]
    assert twice == [], f"applied more than once: {twice[:5]}"
    assert set(fact_ids) == {e["event_id"] for e in events}
    assert {partitions.of(doc["_id"], 2) for doc in docs} == {0, 1}


def test_a_lowered_count_leaves_no_fact_behind(zhifa_config, free_port, tmp_path):
    """PARTITIONS=penalty=3 declared three partition queues; the count goes down to 2 while the third
    partition's queue holds facts: the process that starts with the lower count consumes that queue too."""
    from services.kernel.manifest import manifests
    from services.launcher import command
    from services.penalty.service import PenaltyService
    from services.simulator.bench import handler_queues

    events, _ = workload(300, ["penalty"], seed=27, run_id=zhifa_config["DB_PREFIX"][:6])
    third = [e for e in events if partitions.of(e["payload"]["case_id"], 3) == 2]
    assert third  # (facts that only the third partition's queue gets)
    penalty = processes({"penalty": 1})["penalty"]

    def penalty_with(count: int, name: str):
        port = free_port()
        return launched([(name, command(penalty), {"METRICS_PORT": str(port), "PARTITIONS": f"penalty={count}"},
                          f"http://127.0.0.1:{port}")], suite_env(zhifa_config), tmp_path)

    relaying = {m.name for m in manifests() if m.relays_ingress}  # (the handlers that get partition queues)
    queues = [queue for queue, ep in handler_queues(PenaltyService) if ep.source_service in relaying]
    assert queues
    with gateway_and(zhifa_config, free_port, tmp_path, [], PARTITIONS="penalty=3"):
        with penalty_with(3, "penalty-three"):  # (PARTITION unset: it declares and consumes all three queues)
            # /health answers before every consumer has declared its queues: wait for the third partition's
            declared = wait_for(lambda: all(partitions.left_behind(zhifa_config["AMQP_URI"], q, 2) for q in queues),
                                timeout=30)
            assert declared
        # penalty is stopped; the gateway still routes by three partitions
        stats = publish_amqp(events, zhifa_config["AMQP_URI"])
        assert stats.confirmed == len(events) and stats.nacked == 0
        waiting = wait_for(lambda: sum(n for q in queues for _, n in partitions.left_behind(
            zhifa_config["AMQP_URI"], q, 2)), timeout=30)
        assert waiting > 0  # bundles of the third partition wait in its queue

        with penalty_with(2, "penalty-two") as urls:
            counter = HandledCounter({"penalty": f"{urls['penalty-two']}/metrics"})
            wait_for(lambda: (counter() or 0) >= len(events), timeout=120)
            client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
            stored = {fid for doc in client[f"{zhifa_config['DB_PREFIX']}penalty"].cases.find({}, {"fact_ids": 1})
                      for fid in doc.get("fact_ids") or ()}
            client.close()
            assert {e["event_id"] for e in third} <= stored  # the third partition's facts: applied
            assert stored == {e["event_id"] for e in events}
            assert sum(n for q in queues for _, n in partitions.left_behind(zhifa_config["AMQP_URI"], q, 2)) == 0
        assert "a partition queue beyond PARTITIONS=2" in (tmp_path / "penalty-two.log").read_text()
