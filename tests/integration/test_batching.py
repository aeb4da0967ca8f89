"""Batch consumption in the kernel (BATCH_MAX > 1) on a real broker and FerretDB, with the personnel service.

Facts are published straight to `gateway.events` (as the gateway dispatches them), so their order in
the service's queue is known and, with a long BATCH_WAIT_MS, they reach one batch worker together.
"""
import json
import time
import uuid

import pymongo
import pytest
from kombu import Connection, Exchange, Queue
from nameko import config

from services.kernel.messaging import DEAD_LETTER_EXCHANGE
from services.kernel.packing import unpack
from services.personnel.service import PersonnelService
from tests.helpers import (SCJG, STHJ, credential_issued, distinct_ids, drain, officer_registered, rejection_queue,
                           relayed, wait_for)

GATEWAY_EVENTS = Exchange("gateway.events", type="topic", durable=True)


@pytest.fixture
def personnel(zhifa_config, container_factory):
    # the deadline sweep runs once at start and then not during the test: an officer's facts fall due
    # when they settle (arrival_settle_seconds), and a sweep re-evaluating them on a slow machine would
    # move a version the tests below compare (the redelivery test: "not written again")
    with config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 400, "DEADLINE_SWEEP_SECONDS": 3600}, clear=False):
        container_factory(PersonnelService).start()
        client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
        yield {"amqp": zhifa_config["AMQP_URI"], "db": client[f"{zhifa_config['DB_PREFIX']}personnel"]}
        client.close()


def dispatch(amqp_uri: str, envelopes: list[dict]) -> None:
    """What the gateway does with admitted events: nameko events on `gateway.events`, in this order."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for env in envelopes:
            producer.publish(json.dumps(env, ensure_ascii=False).encode(), exchange=GATEWAY_EVENTS,
                             routing_key=env["type"], declare=[GATEWAY_EVENTS], serializer=None,
                             content_type="application/json", content_encoding="utf-8")


def officer(p, officer_id):
    return unpack(p["db"]["officers"].find_one({"_id": officer_id}))  # snapshot packed (kernel/packing.py)


def applied(p, officer_id, count):
    doc = officer(p, officer_id)
    relayed_ = doc is not None and relayed(p["db"]["officers"], officer_id)  # its outbox marker is gone
    return doc if doc is not None and len(doc.get("fact_ids", [])) >= count and relayed_ else None


def dead_letter_queue(conn) -> Queue:
    queue = Queue(f"test-dead-{uuid.uuid4().hex[:6]}", exchange=DEAD_LETTER_EXCHANGE, routing_key="#",
                  auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def test_a_mixed_batch_applies_the_good_facts_and_refuses_the_bad_one_alone(personnel):
    a, b = f"{SCJG}-9{uuid.uuid4().hex[:3]}", f"{SCJG}-8{uuid.uuid4().hex[:3]}"
    dispatch(personnel["amqp"], [officer_registered(a)])
    wait_for(lambda: applied(personnel, a, 1))
    good = credential_issued(a, "川A5113229001")
    bad = credential_issued(a, "川A5113229002", dept=STHJ)  # another department's officer: not_owner
    other = officer_registered(b)
    with Connection(personnel["amqp"]) as conn:
        rejections, dead = rejection_queue(conn, STHJ), dead_letter_queue(conn)
        dispatch(personnel["amqp"], [good, bad, other, credential_issued(b, "川A5113229003")])
        [notice] = drain(conn, rejections, 1)
        [dead_letter] = drain(conn, dead, 1)
    doc = wait_for(lambda: applied(personnel, a, 2))
    assert doc["fact_ids"][1:] == [good["event_id"]]  # the bad fact is not in the aggregate
    assert notice["event_id"] == bad["event_id"] and notice["status"] == "refused"
    assert [v["rule"] for v in notice["violations"]] == ["not_owner"]
    assert dead_letter["event_id"] == bad["event_id"]
    assert wait_for(lambda: applied(personnel, b, 2))
    time.sleep(0.5)  # nothing else is dead-lettered or retried into the aggregate
    assert officer(personnel, a)["fact_ids"] == doc["fact_ids"]


def test_one_aggregate_twice_in_a_batch_is_one_write(personnel):
    c = f"{SCJG}-7{uuid.uuid4().hex[:3]}"
    dispatch(personnel["amqp"], [officer_registered(c)])
    registered = wait_for(lambda: applied(personnel, c, 1))
    facts = [credential_issued(c, "川A5113229011"), credential_issued(c, "川A5113229012")]  # one queue (credential.*)
    dispatch(personnel["amqp"], facts)
    doc = wait_for(lambda: applied(personnel, c, 3))
    assert doc["fact_ids"] == registered["fact_ids"] + [f["event_id"] for f in facts]
    # one compare-and-set write of both facts (the relay does not write the aggregate): one version
    # on; one write per fact would have moved it two
    assert doc["version"] == registered["version"] + 1
    assert sorted(doc["snapshot"]["credential_numbers"]) == ["川A5113229011", "川A5113229012"]


def test_a_redelivered_batch_changes_nothing(personnel):
    ids = distinct_ids(f"{SCJG}-6", 3)
    batch = [officer_registered(i) for i in ids] + [credential_issued(ids[0], "川A5113229021")]
    dispatch(personnel["amqp"], batch)
    before = {i: wait_for(lambda i=i: applied(personnel, i, 2 if i == ids[0] else 1)) for i in ids}
    marker = f"{SCJG}-5{uuid.uuid4().hex[:3]}"
    dispatch(personnel["amqp"], batch + [officer_registered(marker)])  # the same batch again, then a new fact
    wait_for(lambda: applied(personnel, marker, 1))
    for i in ids:
        after = officer(personnel, i)
        assert after["fact_ids"] == before[i]["fact_ids"] and len(set(after["fact_ids"])) == len(after["fact_ids"])
        assert after["version"] == before[i]["version"]  # not written again
