"""The gateway's admitted events reach each consuming handler in bundles (services/kernel/bundles.py), on a real broker and FerretDB with the gateway and personnel services:
every event applied, a bundle's failed event retried or dead-lettered alone (and its publisher told),
the bundle acked only when each of its events is settled, a handler without batches republishing the
events one by one, a bundle no queue takes dispatched one by one, a malformed bundle dead-lettered."""
import json
import uuid

import pymongo
import pytest
from kombu import Connection, Exchange, Queue
from nameko import config

from services.gateway.service import INGRESS_QUEUE, GatewayService, OutgoingBatch
from services.kernel import bundles
from services.kernel.confirms import ConfirmedPublisher
from services.kernel.messaging import DEAD_LETTER_EXCHANGE, declare_topology
from services.kernel.packing import unpack
from services.personnel.service import PersonnelService
from tests.helpers import (SCJG, STHJ, credential_issued, drain, officer_registered, publish, rejection_queue,
                           vhost_queues, wait_for)

GATEWAY_EVENTS = Exchange("gateway.events", type="topic", durable=True)
OFFICERS = bundles.bundle_key("gateway", "personnel", "officer.*")
CREDENTIALS = bundles.bundle_key("gateway", "personnel", "credential.*")  # (an earlier declaration's key)


@pytest.fixture
def db(zhifa_config):
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    yield client[f"{zhifa_config['DB_PREFIX']}personnel"]
    client.close()


def officer(db, officer_id):
    return unpack(db["officers"].find_one({"_id": officer_id}))


def fact_ids(db, officer_id) -> list:
    doc = officer(db, officer_id)
    return doc.get("fact_ids", []) if doc else []


def bind(conn, exchange: Exchange, key: str) -> Queue:
    queue = Queue(f"test-bundle-{uuid.uuid4().hex[:6]}", exchange=exchange, routing_key=key, auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def bundles_in(conn, queue: Queue, timeout: float = 5) -> list[list[dict]]:
    """The bundles that reached `queue`, each as its envelopes (a plain message: a list of one)."""
    found, channel = [], conn.channel()
    simple = conn.SimpleQueue(queue, channel=channel)
    try:
        while True:
            try:
                msg = simple.get(timeout=timeout if not found else 1)
            except simple.Empty:
                return found
            found.append([env for _, env in bundles.unbundled(msg.delivery_info["routing_key"], json.loads(msg.body))])
            msg.ack()
    finally:
        simple.close()
        channel.close()


def send_bundle(amqp_uri: str, key: str, envelopes: list, raw: bytes | None = None) -> None:
    """A bundle on `gateway.events`, as the gateway sends it (or `raw` bytes on the bundle key)."""
    body = raw if raw is not None else json.dumps(bundles.body([(None, e) for e in envelopes]),
                                                  ensure_ascii=False).encode()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=GATEWAY_EVENTS, routing_key=key, declare=[GATEWAY_EVENTS],
                                serializer=None, content_type="application/json", content_encoding="utf-8")


def queues(vhost) -> dict[str, int]:
    """Each queue of the test's vhost and its messages (ready plus unacked)."""
    return {q["name"]: int(q.get("messages", 0)) for q in vhost_queues(vhost)}


def test_a_batch_of_admitted_events_reaches_personnel_as_one_bundle_per_handler(zhifa_config, container_factory, db):
    amqp = zhifa_config["AMQP_URI"]
    ids = [f"{SCJG}-b{uuid.uuid4().hex[:4]}" for _ in range(6)]
    events = [officer_registered(i) for i in ids] + [credential_issued(ids[0], "川A5113228001")]
    with Connection(amqp) as conn:
        declare_topology(amqp)
        INGRESS_QUEUE(conn.channel()).declare()  # the backlog waits for the gateway: one batch
        seen_officers, seen_credentials = bind(conn, GATEWAY_EVENTS, OFFICERS), bind(conn, GATEWAY_EVENTS, CREDENTIALS)
        with config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 200, "GATEWAY_BUNDLE_MAX": 4}, clear=False):
            container = container_factory(PersonnelService)
            container.start()
            # the prefetch counts messages: divided by the bundle size, ≈ (BATCH_WORKERS + 1) × BATCH_MAX events
            fed = [ep for ep in container.entrypoints if getattr(ep, "source_service", None) == "gateway"]
            assert fed and {ep.consumer.prefetch_count for ep in fed} == {-(-3 * 50 // 4)}
            publish(amqp, events, routing_keys=[f"{SCJG}.{e['type']}" for e in events])
            container_factory(GatewayService).start()
            for i in ids:
                wait_for(lambda i=i: len(fact_ids(db, i)) >= (2 if i == ids[0] else 1), timeout=15)
        officers = bundles_in(conn, seen_officers)
        credentials = bundles_in(conn, seen_credentials)
    # the broker routed bundles of at most 4, not the events one by one: every event once, in order; an
    # officer's credential travels with the officers (one handler for officer.*, credential.*, training.*)
    assert all(len(b) <= 4 for b in officers) and max(map(len, officers)) > 1 and credentials == []
    assert [e["event_id"] for b in officers for e in b] == [e["event_id"] for e in events]
    # (one queue: the officer's facts applied in the order they arrived)
    assert fact_ids(db, ids[0]) == [events[0]["event_id"], events[6]["event_id"]]


def test_a_bundles_refused_event_goes_its_own_way_and_the_rest_are_applied(zhifa_config, container_factory, db,
                                                                          vhost):
    amqp = zhifa_config["AMQP_URI"]
    a, b = f"{SCJG}-c{uuid.uuid4().hex[:4]}", f"{SCJG}-d{uuid.uuid4().hex[:4]}"
    with config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 50}, clear=False):
        container_factory(PersonnelService).start()
    send_bundle(amqp, OFFICERS, [officer_registered(a)])
    wait_for(lambda: fact_ids(db, a), timeout=15)
    good = credential_issued(a, "川A5113228011")
    bad = credential_issued(a, "川A5113228012", dept=STHJ)  # another department's officer: not_owner
    late = credential_issued(b, "川A5113228013")  # no such officer yet: held in b's aggregate, not refused
    with Connection(amqp) as conn:
        rejections = rejection_queue(conn, STHJ)
        dead = bind(conn, DEAD_LETTER_EXCHANGE, "#")
        send_bundle(amqp, OFFICERS, [good, bad, late])
        [notice] = drain(conn, rejections, 1, timeout=15)
        [dead_letter] = drain(conn, dead, 1, timeout=15)
    assert notice["event_id"] == bad["event_id"] and [v["rule"] for v in notice["violations"]] == ["not_owner"]
    assert dead_letter["event_id"] == bad["event_id"]  # the refused event alone, not the bundle
    wait_for(lambda: fact_ids(db, a)[1:] == [good["event_id"]], timeout=15)
    assert wait_for(lambda: officer(db, b), timeout=15)["_id"] == b and late["event_id"] not in fact_ids(db, a)
    # the bundle was acked once each of its events was settled (the officer handler's queue empty)
    wait_for(lambda: [n for name, n in queues(vhost).items()
                      if name.startswith("evt-gateway-officer.*--personnel.")] == [0], timeout=15)


def test_a_handler_without_batches_republishes_a_bundle_one_by_one(zhifa_config, container_factory, db):
    amqp = zhifa_config["AMQP_URI"]
    ids = [f"{SCJG}-e{uuid.uuid4().hex[:4]}" for _ in range(3)]
    with config.patch({"BATCH_MAX": 1}, clear=False):
        container_factory(PersonnelService).start()
        send_bundle(amqp, OFFICERS, [officer_registered(i) for i in ids])
        for i in ids:
            wait_for(lambda i=i: fact_ids(db, i), timeout=15)


def test_a_malformed_bundle_is_dead_lettered_and_the_handler_goes_on(zhifa_config, container_factory, db):
    amqp = zhifa_config["AMQP_URI"]
    after = f"{SCJG}-f{uuid.uuid4().hex[:4]}"
    with config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 50}, clear=False):
        container_factory(PersonnelService).start()
    with Connection(amqp) as conn:
        dead = bind(conn, DEAD_LETTER_EXCHANGE, "#")
        for raw in (b'{"bundle": 1, "events": [["x", 1]]}', b'{"bundle": 2, "events": []}', b"[1, 2]"):
            send_bundle(amqp, OFFICERS, [], raw=raw)
        send_bundle(amqp, OFFICERS, [officer_registered(after)])
        wait_for(lambda: fact_ids(db, after), timeout=15)
        dead_letters = drain(conn, dead, 3, timeout=10)
    assert len(dead_letters) == 3


def test_a_bundle_no_queue_takes_is_dispatched_one_by_one(zhifa_config, monkeypatch):
    """A consumer whose queue is not there (never started in this vhost, or an older version without
    the bundle binding): the broker returns the mandatory bundle and its events go out one by one."""
    amqp = zhifa_config["AMQP_URI"]
    nowhere = f"{bundles.BUNDLE_WORD}.nobody.{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(bundles, "targets", lambda source, event_type: (nowhere,))
    declare_topology(amqp)
    relay = type("R", (), {})()
    relay.exchange, relay.bundle_max = GATEWAY_EVENTS, 10
    relay.container = type("C", (), {"service_name": "gateway"})()
    relay.publisher = ConfirmedPublisher(amqp, exchanges=(GATEWAY_EVENTS,))
    worker = type("W", (), {"context_data": {}})()
    events = [officer_registered(f"{SCJG}-g{uuid.uuid4().hex[:4]}") for _ in range(2)]
    try:
        with Connection(amqp) as conn:
            alone = bind(conn, GATEWAY_EVENTS, "officer.registered")
            out = OutgoingBatch(relay, worker)
            for env in events:
                out.event(env, None)
            out.send()
            got = drain(conn, alone, 2, timeout=10)
    finally:
        relay.publisher.close()
    assert [e["event_id"] for e in got] == [e["event_id"] for e in events]
