"""Competing consumers of the findings inbox: two `nameko run` processes of the coordination service
share the `finding.*` queue (batches on both); every entry is stored once and counted once — the
console counters equal a recount of the entries — with findings raised, resolved and redelivered
while both work, on real RabbitMQ and FerretDB."""
from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from datetime import datetime, timedelta

import pymongo
import pytest

from services.common.chinatime import CST
from services.coordination import store
from services.coordination.domain import inbox as ib
from services.launcher import command, processes, wait_healthy
from tests.helpers import SCJG, STHJ, wait_for
from tests.integration.test_coordination_counts import finding, relay_all, totals

FINDINGS = 240


def findings_handled(url: str) -> float:
    """`finding.*` messages one process handled (its entrypoint calls: one per message of a batch)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("zhifa_entrypoint_calls_total{") and 'event_type="finding.*"' in line)


@pytest.fixture
def two_coordination(zhifa_config, free_port, tmp_path):
    from services.kernel.messaging import declare_topology

    declare_topology(zhifa_config["AMQP_URI"])
    proc_spec = processes()["coordination"]
    base = {**os.environ, "AMQP_URI": zhifa_config["AMQP_URI"], "MONGO_URI": zhifa_config["MONGO_URI"],
            "DB_PREFIX": zhifa_config["DB_PREFIX"], "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "BATCH_MAX": "40", "BATCH_WAIT_MS": "20",
            "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started: list[tuple[subprocess.Popen, str, str]] = []
    try:
        for n in (1, 2):
            port = free_port()
            log = open(tmp_path / f"coordination-{n}.log", "wb")
            proc = subprocess.Popen(command(proc_spec), env={**base, "METRICS_PORT": str(port)}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            started.append((proc, f"http://127.0.0.1:{port}", f"coordination-{n}"))
        for proc, url, name in started:
            assert wait_healthy(f"{url}/health", timeout=90, proc=proc), \
                f"{name} did not start: {(tmp_path / (name + '.log')).read_text()[-2000:]}"
        yield started
    finally:
        for proc, _, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _, _ in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_processes_count_every_entry_once(zhifa_config, two_coordination):
    now = datetime.now(CST)
    keys = [f"PEN-OFFICERS-MIN:case:511322-scjg-2025-{i:04d}" for i in range(FINDINGS)]
    dept = {k: SCJG if i % 4 else STHJ for i, k in enumerate(keys)}
    raised = [finding(k, "finding.raised", now, dept=dept[k]) for k in keys]
    resolved = [finding(k, "finding.resolved", now + timedelta(hours=1), dept=dept[k]) for k in keys[::3]]
    # interleaved: resolutions among the raises, and a third of the raises published twice (redelivered)
    stream = []
    for i, env in enumerate(raised):
        stream.append(env)
        if i % 3 == 0:
            stream.append(resolved[i // 3])
    stream += raised[::3]
    relay_all(zhifa_config["AMQP_URI"], stream)

    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    db = client[f"{zhifa_config['DB_PREFIX']}coordination"]
    try:
        def settled():
            n = db.inbox.count_documents({})
            done = db.inbox.count_documents({"snapshot.state": "resolved"})
            return n == FINDINGS and done == len(resolved)

        wait_for(settled, timeout=180, interval=1)
        want: dict[str, int] = {}
        for doc in db.inbox.find({}, {"snapshot": 1, "fact_ids": 1}):
            cid = store.counter_id(ib.counter_key(doc["snapshot"]))
            want[cid] = want.get(cid, 0) + 1
            assert len(doc["fact_ids"]) == len(set(doc["fact_ids"]))     # no fact applied twice
        assert sum(want.values()) == FINDINGS
        wait_for(lambda: totals(db) == want, timeout=20, interval=0.5)
        assert db.inbox_counted.count_documents({}) == FINDINGS
        # (the stream ends with redelivered raises, which change nothing stored: the state above can be
        # reached before the last of them are handled, so their count is waited for)
        wait_for(lambda: sum(findings_handled(url) for _, url, _ in two_coordination) >= len(stream),
                 timeout=20, interval=0.5)
        per_process = [findings_handled(url) for _, url, _ in two_coordination]
        assert all(n > 0 for n in per_process) and sum(per_process) >= len(stream), per_process  # both took part
    finally:
        client.close()
