"""The hostile-input corpus over AMQP and HTTP against a real gateway (RabbitMQ + FerretDB).

Every case gets its outcome: accepted ones are dispatched to the suite (and nothing else is),
rejected ones come back with the expected rule and field (a notice on `ingress.rejections`, or
the HTTP answer), and every rejected input is kept in quarantine with the same violations.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter

import pymongo
import pytest
import requests
from kombu import Connection, Exchange, Queue

from services.gateway.service import GatewayService
from tests.corpus.build import build, raw_bytes
from tests.helpers import drain

CASES = build()  # from the contracts as they are now
INGRESS = Exchange("ingress", type="topic", durable=True)


@pytest.fixture
def gateway(zhifa_config, container_factory):
    container_factory(GatewayService).start()
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000)
    yield {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"],
           "db": client[f"{zhifa_config['DB_PREFIX']}gateway"]}
    client.close()


def event_id(c: dict) -> str | None:
    try:
        doc = json.loads(raw_bytes(c))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = doc.get("event_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def has(violations: list[dict], expect: dict) -> bool:
    return any(v["rule"] == expect["rule"] and ("field" not in expect or v["field"] == expect["field"])
               for v in violations)


def bind(conn: Connection, exchange: str, key: str) -> Queue:
    queue = Queue(f"test-corpus-{uuid.uuid4().hex[:8]}", exchange=Exchange(exchange, type="topic", durable=True),
                  routing_key=key, auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def assert_quarantined(db, rejected_results: list[tuple[dict, dict]]) -> None:
    """Each rejection's quarantine entry exists and keeps the same violations; nothing else is kept."""
    kept = {doc["_id"]: doc for doc in db.quarantine.find({}, {"raw": 0})}
    assert len(kept) == len(rejected_results)
    for case, answer in rejected_results:
        entry = kept[answer["quarantine_id"]]
        assert entry["violations"] == answer["violations"], case["id"]
        assert has(entry["violations"], case["expect"]), case["id"]


def test_corpus_over_amqp(gateway):
    cases = [c for c in CASES if "amqp" in c["channels"]]
    accepted = {event_id(c) for c in cases if c["expect"]["status"] == "accepted"}
    rejected = [c for c in cases if c["expect"]["status"] == "rejected"]
    with Connection(gateway["amqp"], transport_options={"confirm_publish": True}) as conn:
        notices_q, dispatched_q = bind(conn, "ingress.rejections", "#"), bind(conn, "gateway.events", "#")
        producer = conn.Producer()
        for c in cases:
            producer.publish(raw_bytes(c), exchange=INGRESS, routing_key=c["routing_key"], declare=[INGRESS],
                             content_type="application/json", content_encoding="utf-8", serializer=None)
        notices = drain(conn, notices_q, len(rejected), timeout=60)
        dispatched = drain(conn, dispatched_q, len(accepted), timeout=30)
        assert drain(conn, notices_q, 1, timeout=0.5) == [] and drain(conn, dispatched_q, 1, timeout=0.5) == []
    assert {d["event_id"] for d in dispatched} == accepted and len(dispatched) == len(accepted)
    assert len(notices) == len(rejected)
    by_id = {n["event_id"]: n for n in notices if n["event_id"]}
    anonymous = [n for n in notices if not n["event_id"]]
    pairs = []
    for c in rejected:
        eid = event_id(c)
        notice = by_id.get(eid) if eid in by_id else next(n for n in anonymous if has(n["violations"], c["expect"]))
        if notice in anonymous:
            anonymous.remove(notice)
        assert has(notice["violations"], c["expect"]), (c["id"], notice["violations"])
        pairs.append((c, notice))
    assert_quarantined(gateway["db"], pairs)


def test_corpus_over_http(gateway):
    cases = [c for c in CASES if "http" in c["channels"]]
    pairs, statuses = [], Counter()
    with requests.Session() as http:
        for c in cases:
            resp = http.post(f"{gateway['base']}/api/v1/events", data=raw_bytes(c), timeout=10,
                             headers={"X-Zhifa-Dept": c["dept"], "Content-Type": "application/json"})
            statuses[resp.status_code] += 1
            answer = resp.json()
            if c["expect"]["status"] == "accepted":
                assert resp.status_code == 202 and answer["status"] == "accepted", (c["id"], resp.text)
            else:
                assert 400 <= resp.status_code < 500, (c["id"], resp.status_code)
                assert answer["status"] == "rejected" and has(answer["violations"], c["expect"]), (c["id"], answer)
                for leak in ("Traceback", "Error:", "Expecting"):
                    assert leak not in resp.text, (c["id"], resp.text)
                pairs.append((c, answer))
    assert 500 not in statuses
    assert_quarantined(gateway["db"], pairs)
    accepted = {event_id(c) for c in cases if c["expect"]["status"] == "accepted"}
    assert {d["_id"] for d in gateway["db"].accepted.find({}, {"_id": 1})} == accepted
