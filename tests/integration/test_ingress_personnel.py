"""Through the real ingress (AMQP and HTTP) to the personnel service, on real RabbitMQ and FerretDB."""
import json

import pymongo
import pytest
import requests
from kombu import Connection
from nameko import config as nameko_config

from services.gateway.service import GatewayService
from services.gateway.store import raw_bytes
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.api_kit import start_api
from tests.helpers import (SCJG, STHJ, credential_issued, drain, envelope, officer_registered, publish,
                           rejection_queue, wait_for)


@pytest.fixture
def suite(zhifa_config, container_factory):
    """Gateway + personnel containers against this test's vhost and databases (the deadline sweep
    every second: personnel findings are raised once an officer's arrivals settle, docs/consistency.md)."""
    with nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False):
        for cls in (GatewayService, PersonnelService, RegistryService, PenaltyService):
            container_factory(cls).start()
        base = f"http://{zhifa_config['WEB_SERVER_ADDRESS']}"
        yield {"base": base, "amqp": zhifa_config["AMQP_URI"], "config": zhifa_config,
               "api": start_api(zhifa_config, container_factory)}


def db(suite, name):
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{suite['config']['DB_PREFIX']}{name}"]


def get_officer(suite, officer_id):
    resp = suite["api"].get(f"/api/v1/officers/{officer_id}", as_="sup")
    return resp.json() if resp.status_code == 200 else None


def test_credential_published_on_amqp_is_visible_through_http_api(suite):
    publish(suite["amqp"], [officer_registered("511322-scjg-0001"),
                            credential_issued("511322-scjg-0001", "川A5113220001")])

    # registration and credential travel on different queues: wait for both
    officer = wait_for(lambda: (o := get_officer(suite, "511322-scjg-0001")) and o["credentials"] and o["name"] and o,
                       timeout=10)
    assert officer["name"] == "李明"
    assert officer["credentials"][0]["number"] == "川A5113220001"
    assert officer["credentials"][0]["status"] == "valid"
    cred = suite["api"].get("/api/v1/credentials/川A5113220001", as_="scjg").json()
    assert cred["holder"]["officer_id"] == "511322-scjg-0001"
    listing = suite["api"].get("/api/v1/officers", as_="sup", dept=SCJG).json()
    assert [o["officer_id"] for o in listing["items"]] == ["511322-scjg-0001"]
    assert suite["api"].get("/api/v1/officers", as_="sup", dept=STHJ).json()["total"] == 0


def test_invalid_event_gets_rejection_message_and_quarantine(suite):
    bad = credential_issued("511322-scjg-0002", "川A5113220002")
    del bad["payload"]["valid_to"]
    bad["payload"]["$where"] = "sleep(1000)"
    with Connection(suite["amqp"]) as conn:
        queue = rejection_queue(conn, SCJG)
        publish(suite["amqp"], [bad, b"{broken json"],
                routing_keys=[f"{SCJG}.credential.issued", f"{SCJG}.credential.issued"])
        notices = drain(conn, queue, 2)
    assert len(notices) == 2
    by_reason = {n["reason"]: n for n in notices}
    assert by_reason["forbidden_key"]["event_id"] == bad["event_id"]
    assert {"field": "payload.$where", "rule": "forbidden_key"}.items() <= by_reason["forbidden_key"]["violations"][0].items()
    assert "malformed_json" in by_reason
    kept = wait_for(lambda: list(db(suite, "gateway").quarantine.find()) if
                    db(suite, "gateway").quarantine.count_documents({}) == 2 else None)
    assert {raw_bytes(k["raw"]) for k in kept} >= {b"{broken json"}
    assert all(k["raw_encoding"] == "bytes" and isinstance(k["raw"], bytes) for k in kept)
    assert get_officer(suite, "511322-scjg-0002") is None


def test_event_from_wrong_department_is_rejected(suite):
    env = officer_registered("511322-sthj-0001", dept=STHJ)
    with Connection(suite["amqp"]) as conn:
        queue = rejection_queue(conn, SCJG)
        publish(suite["amqp"], [env], routing_keys=[f"{SCJG}.officer.registered"])
        [notice] = drain(conn, queue, 1)
    assert notice["reason"] == "dept_mismatch"


def test_duplicates_are_applied_once(suite):
    reg = officer_registered("511322-scjg-0003")
    issue = credential_issued("511322-scjg-0003", "川A5113220003")
    publish(suite["amqp"], [reg, issue, issue, reg])
    wait_for(lambda: (o := get_officer(suite, "511322-scjg-0003")) and o["credentials"])
    resp = requests.post(f"{suite['base']}/api/v1/events", data=json.dumps(issue), timeout=5)
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate"
    # the gateway's concurrent batch workers may pass the registration on after the credential:
    # wait until both are applied, then check that nothing was applied twice
    doc = wait_for(lambda: (d := db(suite, "personnel").officers.find_one({"_id": "511322-scjg-0003"}))
                   and len(d["fact_ids"]) >= 2 and d)
    assert sorted(doc["fact_ids"]) == sorted([reg["event_id"], issue["event_id"]])


def test_out_of_order_suspension_is_kept_and_applied(suite):
    issue = credential_issued("511322-scjg-0004", "川A5113220004")
    suspend = envelope("credential.suspended", {"officer_id": "511322-scjg-0004", "credential_no": "川A5113220004",
                                                "suspended_on": "2024-06-01", "reason": "涉嫌违纪，暂扣证件"})
    publish(suite["amqp"], [suspend])  # arrives first: refers to a credential not yet issued
    wait_for(lambda: db(suite, "personnel").officers.find_one({"_id": "511322-scjg-0004"}))
    publish(suite["amqp"], [officer_registered("511322-scjg-0004"), issue])
    officer = wait_for(lambda: (o := get_officer(suite, "511322-scjg-0004")) and o["credentials"] and o)
    assert officer["credentials"][0]["status"] == "suspended"
    verdict = None
    for _ in range(1):
        from nameko.standalone.rpc import ServiceRpcClient

        with ServiceRpcClient("personnel") as personnel:
            verdict = personnel.verify_officer("511322-scjg-0004", "market")
    assert verdict["allowed"] is False
    assert "suspended" in {r["code"] for r in verdict["reasons"]}


def test_http_ingress_single_batch_and_errors(suite):
    base = suite["base"]
    ok = officer_registered("511322-scjg-0005")
    resp = requests.post(f"{base}/api/v1/events", data=json.dumps(ok), timeout=5)
    assert resp.status_code == 202 and resp.json()["status"] == "accepted"

    resp = requests.post(f"{base}/api/v1/events", data=b"{nope", timeout=5)
    assert resp.status_code == 400 and resp.json()["reason"] == "malformed_json"

    huge = officer_registered("511322-scjg-0006", name="名" * 40000)
    resp = requests.post(f"{base}/api/v1/events", data=json.dumps(huge), timeout=5)
    assert resp.status_code == 413

    wrong_type = officer_registered("511322-scjg-0007")
    wrong_type["payload"]["kind"] = "boss"
    batch = [officer_registered("511322-scjg-0008"), wrong_type]
    resp = requests.post(f"{base}/api/v1/events", data=json.dumps(batch), timeout=5)
    assert resp.status_code == 422
    statuses = [r["status"] for r in resp.json()["results"]]
    assert statuses == ["accepted", "rejected"]
    assert resp.json()["results"][1]["violations"][0] == {"field": "payload.kind", "rule": "allowed",
                                                            "message": resp.json()["results"][1]["violations"][0]["message"]}
    wait_for(lambda: get_officer(suite, "511322-scjg-0008"))
    quarantined = suite["api"].get("/api/v1/quarantine", as_="ops").json()["items"]
    assert len(quarantined) == 3


def test_metrics_count_accepted_and_rejected(suite):
    base = suite["base"]
    requests.post(f"{base}/api/v1/events", data=json.dumps(officer_registered("511322-scjg-0009")), timeout=5)
    requests.post(f"{base}/api/v1/events", data=b"[", timeout=5)
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert 'zhifa_ingress_accepted_total{channel="http",dept="511322-scjg",event_type="officer.registered"}' in text
    # the department of a body that is not even JSON is not known: bounded to "unknown", never echoed
    assert ('zhifa_ingress_rejected_total{channel="http",dept="unknown",event_type="unknown",'
            'reason="malformed_json"}') in text
    assert 'event_type=""' not in text and 'dept=""' not in text
    assert requests.get(f"{base}/health", timeout=5).json()["status"] == "ok"


def test_findings_inbox_merges_personnel_findings(suite):
    # a credential issued by a State Council department and not filed (备案) with the county
    publish(suite["amqp"], [officer_registered("511322-scjg-0010"),
                            credential_issued("511322-scjg-0010", "HB13000000210", issuer_level="state_council")])
    inbox = wait_for(lambda: [f for f in suite["api"].get("/api/v1/findings", as_="sup").json()["items"]
                              if f["rule_id"] == "PER-CRED-UNFILED"], timeout=30, interval=0.5)
    assert inbox[0]["source"] == "personnel" and inbox[0]["subject_id"] == "HB13000000210"
    only_penalty = suite["api"].get("/api/v1/findings", as_="sup", source="penalty").json()
    assert only_penalty["total"] == 0
    assert suite["api"].get("/api/v1/findings", as_="sup", source="x").status_code == 400
