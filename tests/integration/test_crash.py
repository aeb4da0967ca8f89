"""Crash test: the personnel process is killed (SIGKILL) while a stream of events is in flight and
restarted; every event must be applied exactly once and no outbox event may be lost."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymongo
import pytest

from services.gateway.service import GatewayService
from services.kernel.packing import unpack
from tests.helpers import credential_issued, envelope, officer_registered, publish, wait_for

ROOT = Path(__file__).resolve().parents[2]
OFFICERS = 60


def start_personnel(cfg, log_path):
    env = dict(os.environ, AMQP_URI=cfg["AMQP_URI"], MONGO_URI=cfg["MONGO_URI"], DB_PREFIX=cfg["DB_PREFIX"],
               OUTBOX_SWEEP_SECONDS="1", PYTHONWARNINGS="ignore::DeprecationWarning", METRICS_PORT="0")
    return subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "services/config.yaml"),
                             "services.personnel.service:PersonnelService"],
                            env=env, cwd=ROOT, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)


def stream():
    events = []
    for i in range(OFFICERS):
        oid = f"511322-scjg-{i:04d}"
        events.append(officer_registered(oid))
        events.append(credential_issued(oid, f"川A51132{i:05d}"))
        events.append(envelope("training.completed", {"officer_id": oid, "hours": 8, "topic": "行政处罚法",
                                                      "completed_on": "2024-03-01"}))
    return events


def test_killed_personnel_process_applies_every_event_exactly_once(zhifa_config, container_factory, tmp_path):
    container_factory(GatewayService).start()
    proc = start_personnel(zhifa_config, tmp_path / "personnel-1.log")
    db = pymongo.MongoClient(zhifa_config["MONGO_URI"])[f"{zhifa_config['DB_PREFIX']}personnel"]
    try:
        events = stream()
        # wait for the personnel queues to exist so nothing is published into the void
        wait_for(lambda: db.officers.estimated_document_count() >= 0 and _queues_ready(zhifa_config), timeout=30)
        publisher = threading.Thread(target=lambda: [publish(zhifa_config["AMQP_URI"], events[i:i + 10])
                                                     for i in range(0, len(events), 10)])
        publisher.start()
        wait_for(lambda: db.officers.count_documents({}) >= 5, timeout=30)
        proc.send_signal(signal.SIGKILL)  # mid-stream, no clean shutdown
        proc.wait(timeout=10)
        publisher.join(timeout=60)
        proc = start_personnel(zhifa_config, tmp_path / "personnel-2.log")

        def all_applied():
            return db.officers.count_documents({}) == OFFICERS and all(
                len(d["fact_ids"]) == 3 for d in db.officers.find({}, {"fact_ids": 1}))
        try:
            wait_for(all_applied, timeout=60, interval=0.5)
        except AssertionError:
            counts = sorted(len(d["fact_ids"]) for d in db.officers.find({}, {"fact_ids": 1}))
            logs = "".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("*.log")))
            raise AssertionError(f"docs={len(counts)} fact counts={counts}\n{logs}")
        # every outbox relayed: no marker left (services/kernel/aggregates.py), by the relay or the sweep
        wait_for(lambda: db.officers_outbox.count_documents({}) == 0, timeout=40, interval=0.5)

        by_officer = {d["_id"]: unpack(d) for d in db.officers.find()}
        expected = {}
        for e in events:
            expected.setdefault(e["payload"]["officer_id"], []).append(e["event_id"])
        for oid, ids in expected.items():
            doc = by_officer[oid]
            assert sorted(doc["fact_ids"]) == sorted(ids)          # every event, exactly once
            assert len(doc["facts"]) == len(set(doc["fact_ids"]))   # no duplicate fact
            assert doc["snapshot"]["training_hours"] == {"2024": 8.0}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _queues_ready(cfg) -> bool:
    import requests

    from tests.conftest import _mgmt_auth, _mgmt_base

    vhost = cfg["AMQP_URI"].rsplit("/", 1)[1]
    mgmt = os.environ.get("RABBIT_MGMT_URI", "http://guest:guest@127.0.0.1:15682")
    queues = requests.get(f"{_mgmt_base(mgmt)}/api/queues/{vhost}", auth=_mgmt_auth(mgmt), timeout=5).json()
    names = {q["name"] for q in queues}
    return {"evt-gateway-officer.*--personnel.handle_officer", "evt-gateway-agency.*--personnel.handle_agency"} <= names
