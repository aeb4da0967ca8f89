"""Dead-letter replay through the HTTP API on real servers: an operator's audited act, checked against
the contracts as if new, and republished at most once however many replays race."""
from __future__ import annotations

import json
import time
import uuid

import eventlet
import pymongo
import pytest

from services.gateway.service import GatewayService
from services.kernel.clock import utcnow
from services.kernel.messaging import PoisonMessage, reliable_event_handler
from tests.api_kit import start_api
from tests.helpers import officer_registered, publish, wait_for

CALLS: dict[str, int] = {}


class Refuser:
    """Refuses every officer registration (a poison message): each one is dead-lettered at once."""

    name = "refuser"

    @reliable_event_handler("gateway", "officer.registered")
    def handle(self, envelope):
        officer_id = envelope["payload"]["officer_id"]
        CALLS[officer_id] = CALLS.get(officer_id, 0) + 1
        raise PoisonMessage("拒绝处理")


@pytest.fixture
def suite(zhifa_config, container_factory):
    CALLS.clear()
    for cls in (GatewayService, Refuser):
        container_factory(cls).start()
    kit = start_api(zhifa_config, container_factory)
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    return {"amqp": zhifa_config["AMQP_URI"], "api": kit, "gateway": client[f"{zhifa_config['DB_PREFIX']}gateway"]}


def dead_letter_of(suite, env: dict) -> dict:
    return wait_for(lambda: next((d for d in suite["api"].get("/api/v1/dead-letters", as_="ops").json()["items"]
                                  if d["event"].get("event_id") == env["event_id"]), None))


def test_concurrent_replays_republish_a_dead_letter_once(suite):
    api = suite["api"]
    env = officer_registered("511322-scjg-0401")
    publish(suite["amqp"], [env])
    dl = dead_letter_of(suite, env)
    assert CALLS["511322-scjg-0401"] == 1 and dl["status"] == "dead"
    assert dl["event"]["type"] == "officer.registered" and "body" not in dl and "李明" not in str(dl)

    pool = eventlet.GreenPool(12)
    answers = list(pool.imap(lambda _: api.post(f"/api/v1/dead-letters/{dl['_id']}/replay", as_="ops"), range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 11, [a.text for a in answers]
    wait_for(lambda: CALLS["511322-scjg-0401"] == 2)
    time.sleep(1.0)
    assert CALLS["511322-scjg-0401"] == 2  # republished exactly once
    stored = suite["gateway"].dead_letters.find_one({"_id": dl["_id"]})
    assert stored["status"] == "replayed" and stored["replayed_by"] == "ops"
    audit = api.get("/api/v1/audit", as_="aud", action="replay_dead_letter").json()
    assert audit["total"] == 12 and sorted(e["status"] for e in audit["items"]) == [200] + [409] * 11
    assert {e["actor"] for e in audit["items"]} == {"ops"}


def test_store_claim_is_atomic_against_the_real_database(suite):
    """The compare-and-set itself, without HTTP: of many racing claims exactly one wins."""
    from services.gateway.store import GatewayStore

    db = suite["gateway"]
    ids = [f"dl-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for dl_id in ids:
        db.dead_letters.insert_one({"_id": dl_id, "status": "dead", "body": "{}", "queue": "q", "dead_at": utcnow()})
    pool = eventlet.GreenPool(40)
    won = list(pool.imap(lambda args: GatewayStore(db).claim_dead_letter(args[0], f"op{args[1]}", utcnow()),
                         [(dl_id, n) for dl_id in ids for n in range(8)]))
    assert sum(1 for w in won if w is not None) == len(ids)
    assert {d["status"] for d in db.dead_letters.find({"_id": {"$in": ids}})} == {"replaying"}


def test_forged_dead_letter_is_refused_by_the_contracts_and_only_operators_replay(suite):
    api = suite["api"]
    forged = officer_registered("511322-scjg-0402")
    forged["payload"]["kind"] = "boss"            # breaks the contract
    forged["payload"]["$where"] = "sleep(100)"     # and a hostile key
    suite["gateway"].dead_letters.insert_one({
        "_id": "forged-1", "queue": "refuser.gateway.officer.registered", "service": "refuser", "status": "dead",
        "body": json.dumps(forged), "content_type": "application/json", "dead_at": utcnow(), "headers": {}})
    for who, status in (("sup", 403), ("aud", 403), ("scjg", 403), (None, 401)):
        assert api.post("/api/v1/dead-letters/forged-1/replay", as_=who).status_code == status
    resp = api.post("/api/v1/dead-letters/forged-1/replay", as_="ops")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "contract_violation"
    assert {v["field"] for v in resp.json()["error"]["violations"]} >= {"payload.$where"}
    assert suite["gateway"].dead_letters.find_one({"_id": "forged-1"})["status"] == "refused"
    time.sleep(0.5)
    assert "511322-scjg-0402" not in CALLS  # nothing reached the service
    assert api.post("/api/v1/dead-letters/forged-1/replay", as_="ops").status_code == 409
    assert api.post("/api/v1/dead-letters/none-such/replay", as_="ops").status_code == 404
    listing = api.get("/api/v1/dead-letters", as_="ops", status="refused").json()
    assert listing["total"] == 1 and listing["items"][0]["_id"] == "forged-1"
