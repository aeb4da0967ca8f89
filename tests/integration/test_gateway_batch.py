"""The gateway admits ingress in batches (real RabbitMQ + FerretDB).

One unordered insert of a batch's dedupe claims, one publish of its events and rejection notices with
one wait for the broker's confirms, acks only after that; duplicates and id conflicts within one batch
answered as they are one at a time; raw bodies kept byte-exact (NUL bytes included) in quarantine and
dead letters, old text records still read.
"""
from __future__ import annotations

import json
import uuid

import pymongo
import pytest
import requests
from kombu import Connection, Exchange, Queue

from services.gateway.service import INGRESS_QUEUE, GatewayService
from services.gateway.store import GatewayStore, raw_bytes
from services.kernel.confirms import ConfirmedPublisher, NotConfirmed, Outgoing
from services.kernel.messaging import DEAD_LETTER_EXCHANGE, declare_topology
from tests.helpers import SCJG, drain, officer_registered, publish, rejection_queue, wait_for

EVENTS = Exchange("gateway.events", type="topic", durable=True)


def sink(conn: Connection) -> Queue:
    """Everything the gateway dispatches (exchange gateway.events)."""
    queue = Queue(f"test-batch-{uuid.uuid4().hex[:6]}", exchange=EVENTS, routing_key="#", auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def gateway_db(conf: dict):
    client = pymongo.MongoClient(conf["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client, client[f"{conf['DB_PREFIX']}gateway"]


@pytest.fixture
def claims(monkeypatch):
    """The size of every dedupe claim write (observed, not replaced)."""
    sizes: list[int] = []
    real = GatewayStore.claim

    def observed(self, envelopes, channel, received_at, *hashes):
        sizes.append(len(envelopes))
        return real(self, envelopes, channel, received_at, *hashes)

    monkeypatch.setattr(GatewayStore, "claim", observed)
    return sizes


def test_a_backlog_is_admitted_in_batches_with_duplicates_conflicts_and_binary_input_answered(
        zhifa_config, container_factory, claims):
    amqp = zhifa_config["AMQP_URI"]
    a, b = officer_registered("511322-scjg-0801"), officer_registered("511322-scjg-0802")
    conflict = {**a, "payload": {**a["payload"], "name": "另一个人"}}
    binary = b"\x00\xff\xfe{\x00\"event_id\x00\"}\x00" + bytes(range(256))
    key = f"{SCJG}.officer.registered"
    with Connection(amqp) as conn:
        declare_topology(amqp)
        INGRESS_QUEUE(conn.channel()).declare()  # the backlog waits for the gateway
        out, rejections = sink(conn), rejection_queue(conn, SCJG)
        publish(amqp, [a, b, a, conflict, binary], routing_keys=[key] * 5)
        container_factory(GatewayService).start()
        dispatched = drain(conn, out, 2, timeout=10)
        notices = drain(conn, rejections, 2, timeout=10)
        assert drain(conn, out, 1, timeout=1) == [] and drain(conn, rejections, 1, timeout=1) == []
    assert max(claims) > 1, claims  # the backlog went through in batches
    assert sorted(e["event_id"] for e in dispatched) == sorted([a["event_id"], b["event_id"]])
    assert {(n["reason"], n["event_id"]) for n in notices} == {("event_id_conflict", a["event_id"]),
                                                              ("malformed_json", None)}
    client, db = gateway_db(zhifa_config)
    with client:
        assert {d["_id"] for d in db.accepted.find()} == {a["event_id"], b["event_id"]}
        kept = {d["violations"][0]["rule"]: d for d in db.quarantine.find()}
    assert kept["malformed_json"]["raw"] == binary  # byte-exact, NUL bytes included
    assert kept["malformed_json"]["raw_encoding"] == "bytes" and kept["malformed_json"]["size"] == len(binary)
    assert raw_bytes(kept["event_id_conflict"]["raw"]) == json.dumps(conflict, ensure_ascii=False).encode()



def test_one_at_a_time_when_ingress_batch_max_is_1(zhifa_config, container_factory, claims):
    from nameko import config

    a, b = officer_registered("511322-scjg-0805"), officer_registered("511322-scjg-0806")
    with config.patch({"INGRESS_BATCH_MAX": 1}, clear=False), Connection(zhifa_config["AMQP_URI"]) as conn:
        declare_topology(zhifa_config["AMQP_URI"])
        INGRESS_QUEUE(conn.channel()).declare()
        out = sink(conn)
        publish(zhifa_config["AMQP_URI"], [a, a, b])
        container_factory(GatewayService).start()
        dispatched = drain(conn, out, 2, timeout=10)
        assert drain(conn, out, 1, timeout=1) == []
    assert claims == [1, 1, 1]
    assert sorted(e["event_id"] for e in dispatched) == sorted([a["event_id"], b["event_id"]])

def test_a_publish_the_broker_did_not_confirm_acks_nothing_and_the_retry_dispatches(
        zhifa_config, container_factory, monkeypatch):
    """The claims are written, the publish fails: the messages come back through the retry queue and
    (same content, claimed by themselves) are dispatched then; none is lost or dead-lettered."""
    failed = []
    real = ConfirmedPublisher.publish_all

    def once_unconfirmed(self, messages):
        if not failed:
            failed.append(len(messages))
            raise NotConfirmed("消息服务拒收（nack）1 条消息")
        return real(self, messages)

    monkeypatch.setattr(ConfirmedPublisher, "publish_all", once_unconfirmed)
    events = [officer_registered(f"511322-scjg-081{i}") for i in range(3)]
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        out = sink(conn)
        container_factory(GatewayService).start()
        publish(zhifa_config["AMQP_URI"], events)
        dispatched = drain(conn, out, 3, timeout=15)
        assert drain(conn, out, 1, timeout=1.5) == []
    assert failed
    assert sorted(e["event_id"] for e in dispatched) == sorted(e["event_id"] for e in events)
    client, db = gateway_db(zhifa_config)
    with client:
        assert db.dead_letters.count_documents({}) == 0 and db.quarantine.count_documents({}) == 0


def test_an_http_batch_takes_the_same_path_in_chunks(zhifa_config, container_factory, claims):
    container_factory(GatewayService).start()
    base = f"http://{zhifa_config['WEB_SERVER_ADDRESS']}"
    first = officer_registered("511322-scjg-0820")
    conflict = {**first, "payload": {**first["payload"], "name": "另一个人"}}
    others = [officer_registered(f"511322-scjg-09{i:02d}") for i in range(60)]  # more than one chunk of 50
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        out = sink(conn)
        resp = requests.post(f"{base}/api/v1/events", data=json.dumps([first, first, conflict, *others]),
                             headers={"X-Zhifa-Dept": SCJG}, timeout=30)
        dispatched = drain(conn, out, 61, timeout=15)
        assert drain(conn, out, 1, timeout=1) == []
    assert resp.status_code == 422  # one item rejected
    statuses = [r["status"] for r in resp.json()["results"]]
    assert statuses[:3] == ["accepted", "duplicate", "rejected"] and set(statuses[3:]) == {"accepted"}
    assert resp.json()["results"][2]["reason"] == "event_id_conflict"
    assert len({e["event_id"] for e in dispatched}) == 61
    again = requests.post(f"{base}/api/v1/events", data=json.dumps(others[:2]), headers={"X-Zhifa-Dept": SCJG},
                          timeout=10)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert claims == []  # HTTP publishes first and remembers after; it claims nothing beforehand
    client, db = gateway_db(zhifa_config)
    with client:
        assert db.accepted.count_documents({}) == 61


def test_the_confirmed_publisher_waits_for_every_confirm_and_recovers_from_a_broken_channel(zhifa_config):
    amqp = zhifa_config["AMQP_URI"]
    exchange = Exchange(f"test-confirms-{uuid.uuid4().hex[:6]}", type="topic", durable=True)
    publisher = ConfirmedPublisher(amqp, exchanges=(exchange,), timeout=10)
    try:
        with Connection(amqp) as conn:
            queue = Queue(f"test-confirms-{uuid.uuid4().hex[:6]}", exchange=exchange, routing_key="#",
                          auto_delete=False)
            queue(conn.channel()).declare()
            publisher.publish_all([Outgoing(exchange, "a.b", {"n": i}, {"h": "v"}) for i in range(120)])
            # confirmed means stored: every message is in the queue, persistent, as published
            got = drain(conn, queue, 120, timeout=10)
            assert [m["n"] for m in got] == list(range(120))
            missing = Exchange("no-such-exchange", type="topic")
            with pytest.raises(Exception):  # the broker closes the channel: the batch is not confirmed
                publisher.publish_all([Outgoing(missing, "x", {"n": -1})])
            publisher.publish_all([Outgoing(exchange, "a.b", {"n": 120})])  # a fresh lane
            assert [m["n"] for m in drain(conn, queue, 1, timeout=10)] == [120]
    finally:
        publisher.close()


def test_a_dead_letter_with_nul_bytes_is_kept_byte_exact_and_old_text_records_still_read(
        zhifa_config, container_factory):
    container = container_factory(GatewayService)
    container.start()
    body = b"\x00\x01binary\xff\x00"
    with Connection(zhifa_config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=DEAD_LETTER_EXCHANGE, routing_key="personnel.handle",
                                serializer=None, content_type="application/octet-stream",
                                headers={"x-zhifa-dead-id": "dl-nul", "x-zhifa-queue": "q",
                                         "x-custom": "a\x00b"})
    client, db = gateway_db(zhifa_config)
    with client:
        doc = wait_for(lambda: db.dead_letters.find_one({"_id": "dl-nul"}))
        assert doc["body"] == body and doc["body_encoding"] == "bytes"
        assert doc["headers"]["x-custom"] == b"a\x00b"  # a text header with NUL kept as bytes
        # a record written before bodies were bytes (text) is listed and replayed like any other
        old = officer_registered("511322-scjg-0830")
        db.dead_letters.insert_one({"_id": "dl-old", "queue": "gateway.ingress", "status": "dead",
                                    "dead_at": doc["dead_at"], "headers": {}, "body": json.dumps(old),
                                    "content_type": "application/json"})
    from nameko.standalone.rpc import ClusterRpcClient

    with ClusterRpcClient() as rpc:
        listed = {d["_id"]: d for d in rpc.gateway.list_dead_letters()["items"]}
        assert listed["dl-nul"]["size"] == len(body)
        assert listed["dl-old"]["event"]["event_id"] == old["event_id"]
        replayed = rpc.gateway.replay_dead_letter("dl-old", "op1")
    assert replayed["ok"] is True and replayed["event_id"] == old["event_id"]


def test_hostile_raw_input_is_kept_byte_exact_on_postgresql_too(ferretdb_on_postgresql):
    """FerretDB on PostgreSQL cannot store a NUL character in a string (jsonb): the raw body is kept as
    bytes, the text beside it (event id, routing key, a violation's field path) without NUL, a dead
    letter's NUL-holding header as bytes — and read back as sent."""
    from datetime import datetime, timezone

    from pymongo.errors import PyMongoError

    from services.gateway.service import storable_headers, stored_headers

    db = ferretdb_on_postgresql.zhifa_gateway
    with pytest.raises(PyMongoError):  # why: the old text form of such a body is refused
        db.quarantine.insert_one({"_id": "old", "raw": "a\x00b"})
    store = GatewayStore(db)
    utf16 = json.dumps({"event_id": "x"}).encode("utf-16")
    body = b"\x00\xff" + utf16
    now = datetime.now(timezone.utc)
    [qid] = store.quarantine([{"raw": body, "violations": [{"field": "payload.\x00", "rule": "forbidden_key",
                                                            "message": "不允许的键"}],
                               "dept": SCJG, "routing_key": f"{SCJG}.x\x00", "event_id": "e\x00"}],
                             channel="amqp", received_at=now)
    kept = db.quarantine.find_one({"_id": qid})
    assert kept["raw"] == body and kept["size"] == len(body)
    assert kept["event_id"] == "e\\u0000" and kept["violations"][0]["field"] == "payload.\\u0000"
    headers = {"x-custom": "a\x00b", "nameko.traceparent": "00-1-2-01", "attempts": 2}
    store.add_dead_letter({"_id": "dl", "body": body, "body_encoding": "bytes", "headers": storable_headers(headers),
                           "status": "dead", "dead_at": now})
    dead = store.get_dead_letter("dl")
    assert dead["body"] == body and stored_headers(dead["headers"]) == headers
