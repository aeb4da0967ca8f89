"""Ownership of data end to end: a fact about another department's subject is refused, and the
publisher hears why (real RabbitMQ + FerretDB). Rules: docs/ownership.md."""
import uuid
from datetime import datetime, timedelta

import pymongo
import pytest
from kombu import Connection

from services.gateway.service import GatewayService
from services.kernel.packing import unpack
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.helpers import CST, SCJG, STHJ, drain, envelope, officer_registered, publish, rejection_queue, wait_for


@pytest.fixture
def suite(zhifa_config, container_factory):
    for cls in (GatewayService, PersonnelService, RegistryService, PenaltyService):
        container_factory(cls).start()
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return {"amqp": zhifa_config["AMQP_URI"], "db": lambda name: client[f"{zhifa_config['DB_PREFIX']}{name}"]}


def _refused(suite, dept: str, envelopes: list[dict]) -> list[dict]:
    with Connection(suite["amqp"]) as conn:
        queue = rejection_queue(conn, dept)
        publish(suite["amqp"], envelopes)
        return drain(conn, queue, len(envelopes), timeout=20)


def test_another_departments_facts_about_an_officer_item_or_case_are_refused_with_the_reason(suite):
    oid, code, case_id = f"511322-scjg-{uuid.uuid4().hex[:6]}", f"3302{uuid.uuid4().int % 10**8:08d}", str(uuid.uuid4())
    publish(suite["amqp"], [
        officer_registered(oid),
        envelope("item.published", {"item_code": code, "name": "对某违法行为的行政处罚", "category": "penalty",
                                    "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条"}],
                                    "effective_from": "2024-01-01"}),
        envelope("case.filed", {"case_id": case_id, "item_code": code, "case_no": "营市监立〔2026〕1号"}),
    ])
    officers, items, cases = (suite["db"](n) for n in ("personnel", "registry", "penalty"))
    wait_for(lambda: officers.officers.find_one({"_id": oid}) and items.items.find_one({"_id": code})
             and cases.cases.find_one({"_id": case_id}), timeout=15)

    foreign = [
        envelope("officer.updated", {"officer_id": oid, "status": "left", "reason": "调走"}, dept=STHJ),
        envelope("training.completed", {"officer_id": oid, "completed_on": "2026-03-01", "hours": 40,
                                        "topic": "虚报学时"}, dept=STHJ),
        envelope("item.amended", {"item_code": code, "effective_from": "2026-01-01", "name": "篡改的名称"}, dept=STHJ),
        envelope("case.investigated", {"case_id": case_id, "act_kind": "inspection", "officers": ["x", "y"]},
                 dept=STHJ),
    ]
    notices = _refused(suite, STHJ, foreign)
    by_id = {n["event_id"]: n for n in notices}
    assert set(by_id) == {e["event_id"] for e in foreign}
    for notice in notices:
        assert notice["status"] == "refused" and notice["violations"][0]["rule"] == "not_owner", notice
        assert SCJG in notice["violations"][0]["message"]
    # nothing was applied
    officer = unpack(officers.officers.find_one({"_id": oid}))
    assert officer["snapshot"]["dept"] == SCJG and officer["snapshot"]["status"] == "active"
    assert officer["snapshot"]["training_hours"] == {} and len(officer["facts"]) == 1
    assert len(unpack(items.items.find_one({"_id": code}))["facts"]) == 1
    assert len(unpack(cases.cases.find_one({"_id": case_id}))["facts"]) == 1


def test_a_transfer_completes_only_when_the_receiving_department_accepts(suite):
    oid = f"511322-scjg-{uuid.uuid4().hex[:6]}"
    now = datetime.now(CST)
    today, yesterday = now.date().isoformat(), (now - timedelta(days=1)).isoformat(timespec="seconds")
    publish(suite["amqp"], [{**officer_registered(oid), "occurred_at": yesterday},
                            envelope("officer.transfer_requested", {"officer_id": oid, "to_dept": STHJ},
                                     occurred_at=yesterday)])
    officers = suite["db"]("personnel").officers
    wait_for(lambda: (doc := unpack(officers.find_one({"_id": oid}))) and doc["snapshot"].get("transfer_request"),
             timeout=15)
    publish(suite["amqp"], [envelope("officer.transfer_accepted", {"officer_id": oid, "from_dept": SCJG,
                                                                   "effective_on": today}, dept=STHJ)])
    doc = wait_for(lambda: (d := unpack(officers.find_one({"_id": oid}))) and d["snapshot"]["dept"] == STHJ and d,
                   timeout=15)
    assert doc["dept"] == STHJ and doc["snapshot"]["transfers"][0]["from"] == SCJG
    # the old department no longer reports on the officer
    [notice] = _refused(suite, SCJG, [envelope("officer.updated", {"officer_id": oid, "status": "left"})])
    assert notice["violations"][0]["rule"] == "not_owner"
