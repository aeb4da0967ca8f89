"""Chaos (`make chaos`; marked `chaos`, not in the default run): a stream of CHAOS_EVENTS events
(default 20,000) while the personnel process is SIGKILLed CHAOS_KILLS times (default 10) and
restarted, its database is unreachable for CHAOS_DB_OUTAGE_S seconds (default 60; a real network
outage: every connection through a proxy is cut and new ones refused), and every broker connection
of the suite is force-closed by the broker (on a shared broker the suite cannot restart RabbitMQ
itself; closing every connection is what a restart does to clients). Afterwards: 0 events lost
(each officer has exactly its facts), 0 applied twice (no fact id twice), 0 dead letters.
Figures are printed and written to .run/chaos-figures.json.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import eventlet
import pymongo
import pytest
import requests
from kombu import Connection, Exchange

from services.gateway.service import GatewayService
from tests.helpers import credential_issued, envelope, officer_registered, wait_for
from tests.integration.test_hostile import FlakyProxy

pytestmark = pytest.mark.chaos
# the unpatched module: eventlet's green Popen trips over file descriptors reused between restarts
subprocess = eventlet.patcher.original("subprocess")
ROOT = Path(__file__).resolve().parents[2]
EVENTS = int(os.environ.get("CHAOS_EVENTS", "20000"))
KILLS = int(os.environ.get("CHAOS_KILLS", "10"))
OUTAGE = float(os.environ.get("CHAOS_DB_OUTAGE_S", "60"))
PER_OFFICER = 3
INGRESS = Exchange("ingress", type="topic", durable=True)


def stream(n: int) -> list[dict]:
    events = []
    for i in range(n // PER_OFFICER):
        oid = f"511322-scjg-{i:05d}"
        events += [officer_registered(oid), credential_issued(oid, f"川A{i:010d}"),
                   envelope("training.completed", {"officer_id": oid, "hours": 8, "topic": "行政处罚法",
                                                   "completed_on": "2024-03-01"})]
    return events


def start_personnel(cfg: dict, mongo_uri: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, AMQP_URI=cfg["AMQP_URI"], MONGO_URI=mongo_uri, DB_PREFIX=cfg["DB_PREFIX"],
               MONGO_TIMEOUT_MS="2000", RETRY_DELAYS_MS="[200, 1000, 3000]", OUTBOX_SWEEP_SECONDS="2",
               PYTHONWARNINGS="ignore::DeprecationWarning", METRICS_PORT="0", LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "services/config.yaml"),
                             "services.personnel.service:PersonnelService"],
                            env=env, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def publish_all(amqp: str, events: list[dict], sent: list[int]) -> None:
    """Publish with confirms, reconnecting (and re-sending the unconfirmed batch) when the broker drops us."""
    i = 0
    while i < len(events):
        try:
            with Connection(amqp, transport_options={"confirm_publish": True}) as conn:
                producer = conn.Producer()
                while i < len(events):
                    for env in events[i:i + 50]:
                        producer.publish(json.dumps(env, ensure_ascii=False).encode(), exchange=INGRESS,
                                         routing_key=f"{env['dept']}.{env['type']}", declare=[INGRESS],
                                         content_type="application/json", serializer=None)
                    i = min(i + 50, len(events))
                    sent[0] = i
                    eventlet.sleep(0)
        except Exception:  # the broker closed us: same events again (the gateway de-duplicates)
            eventlet.sleep(0.5)


def close_broker_connections(vhost: dict) -> int:
    conns = requests.get(f"{vhost['mgmt']}/api/vhosts/{vhost['name']}/connections", auth=vhost["auth"], timeout=10).json()
    for c in conns:
        requests.delete(f"{vhost['mgmt']}/api/connections/{requests.utils.quote(c['name'], safe='')}",
                        auth=vhost["auth"], timeout=10, headers={"X-Reason": "chaos"})
    return len(conns)


def test_kills_database_outage_and_broker_disconnects_lose_nothing_and_apply_nothing_twice(
        zhifa_config, vhost, container_factory, tmp_path):
    real = urlparse(zhifa_config["MONGO_URI"])
    proxy = FlakyProxy(real.hostname or "127.0.0.1", real.port or 27017)
    proxied = f"mongodb://127.0.0.1:{proxy.port}/"
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
    db = client[f"{zhifa_config['DB_PREFIX']}personnel"]
    gateway_db = client[f"{zhifa_config['DB_PREFIX']}gateway"]
    events = stream(EVENTS)
    officers = len(events) // PER_OFFICER
    figures: dict = {"events": len(events), "officers": officers, "kills": 0, "db_outage_s": OUTAGE,
                     "broker_connections_closed": 0}
    container_factory(GatewayService).start()
    # the supervisor (systemd, docker `restart: unless-stopped`): a process that exits is started again
    # (a service that starts while its database is down exits at start)
    state = {"proc": start_personnel(zhifa_config, proxied, tmp_path / "personnel.log"), "stop": False, "restarts": 0}

    def supervise():
        while not state["stop"]:
            if state["proc"].poll() is not None:
                state["restarts"] += 1
                state["proc"] = start_personnel(zhifa_config, proxied, tmp_path / "personnel.log")
            eventlet.sleep(0.5)

    supervisor = eventlet.spawn(supervise)
    started = time.monotonic()
    try:
        wait_for(lambda: any(q["name"].startswith("evt-gateway") for q in requests.get(
            f"{vhost['mgmt']}/api/queues/{vhost['name']}", auth=vhost["auth"], timeout=10).json()), timeout=60)
        sent = [0]
        publisher = eventlet.spawn(publish_all, zhifa_config["AMQP_URI"], events, sent)

        def applied() -> int:
            return db.officers.count_documents({})

        # 1. SIGKILL the personnel process KILLS times, spread over the stream
        for k in range(KILLS):
            target = (k + 1) * officers // (KILLS + 2)
            wait_for(lambda: applied() >= target, timeout=600, interval=0.5)
            state["proc"].send_signal(signal.SIGKILL)
            figures["kills"] += 1
            eventlet.sleep(1)  # the supervisor starts it again
        wait_for(lambda: applied() >= (KILLS + 1) * officers // (KILLS + 2), timeout=600, interval=0.5)
        # 2. the database is unreachable for OUTAGE seconds while events keep arriving
        proxy.cut()
        outage_started = time.monotonic()
        while time.monotonic() - outage_started < OUTAGE:
            proxy.cut()  # keep cutting whatever reconnects
            eventlet.sleep(1)
        proxy.restore()
        # 3. the broker drops every connection of the suite (gateway, personnel, publisher)
        figures["broker_connections_closed"] = close_broker_connections(vhost)
        publisher.wait()

        def done():
            return applied() == officers and db.officers.count_documents({"fact_ids.2": {"$exists": True}}) == officers
        wait_for(done, timeout=int(os.environ.get("CHAOS_SETTLE_S", "900")), interval=2)
        figures["seconds"] = round(time.monotonic() - started, 1)
        fact_ids = [f for d in db.officers.find({}, {"fact_ids": 1}) for f in d["fact_ids"]]
        figures["applied"] = len(fact_ids)
        figures["applied_twice"] = len(fact_ids) - len(set(fact_ids))
        figures["lost"] = len({e["event_id"] for e in events} - set(fact_ids))
        figures["dead_letters"] = gateway_db.dead_letters.count_documents({})
        figures["events_per_second"] = round(len(events) / figures["seconds"], 1)
    finally:
        state["stop"] = True
        supervisor.wait()
        figures["restarts"] = state["restarts"]
        state["proc"].send_signal(signal.SIGTERM)
        try:
            state["proc"].wait(timeout=15)
        except subprocess.TimeoutExpired:
            state["proc"].kill()
        proxy.close()
        client.close()
        out = ROOT / ".run" / "chaos-figures.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2) + "\n")
        print("chaos figures:", json.dumps(figures))
    assert (figures["lost"], figures["applied_twice"], figures["dead_letters"]) == (0, 0, 0), figures
    assert figures["kills"] == KILLS and figures["broker_connections_closed"] > 0
