"""Aggregates that pack their snapshot (issue 14; services/kernel/packing.py `Layout`, declared in
the manifests): penalty cases and personnel officers are stored with the snapshot inside the packed
field (and the officer's queried paths lifted beside it) on a real MongoDB-wire server, and every
reader gets exactly what it got from the document stored the old way: the case detail, the case
list rebuilt from the documents, the officer list with its filters, a credential look-up, the fact
status. A document stored before (snapshot plain) reads the same and is packed by its next save."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pymongo
import pytest

from plugins.host import build_plugin_manager
from services.kernel import packing
from services.kernel.base import EventSourcedService
from services.kernel.manifest import Aggregate
from services.kernel.replay import offline
from services.penalty import store as penalty_store
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from tests.helpers import SCJG, credential_issued, envelope, officer_registered

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)
CASE = "511322-scjg-2026-0901"
OFFICERS = (("511322-scjg-0901", "王芳", "川A5113220901"), ("511322-scjg-0902", "赵磊", "川A5113220902"))


@pytest.fixture
def dbs(zhifa_config):
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    prefix = zhifa_config["DB_PREFIX"]
    yield {name: client[f"{prefix}{name}"] for name in ("penalty", "personnel")}
    client.close()


def service(cls, db, now: datetime = T0 + timedelta(days=10)):
    return offline(cls, db, host=build_plugin_manager(enabled=[]), preset="seed001", dispatch=lambda t, p: None,
                   clock=lambda: now)


def fact(type_: str, days: int, **payload) -> dict:
    return envelope(type_, {"case_id": CASE, **payload}, SCJG, occurred_at=(T0 + timedelta(days=days)).isoformat())


def case_story() -> list[dict]:
    party = {"type": "org", "id": "91511322MA3C4X0901", "name": "营山县第901食品有限公司"}
    officers = [o for o, _, _ in OFFICERS]
    return [
        fact("case.filed", 0, item_code="330217001000", case_no="营市监立〔2026〕901号", party=party,
             summary="群众举报销售过期食品"),
        fact("case.investigated", 1, act_kind="evidence", officers=officers, text="现场检查，提取证据"),
        fact("case.notified", 2, hearing_right=False, proposed_kinds=["fine"]),
        fact("case.decided", 3, decision_no="营市监罚〔2026〕901号", kinds=["fine"], fine_amount=75000, tier="normal",
             party=party, act_code="FOOD-EXPIRED-SALE", officers=officers),
    ]


def restore(col, doc: dict, layout: packing.Layout) -> None:
    """Store `doc` (the domain's form) as `layout` writes it."""
    col.replace_one({"_id": doc["_id"]}, layout.pack(doc))


def test_a_case_is_stored_with_its_snapshot_packed_and_reads_as_before(dbs):
    db = dbs["penalty"]
    penalty = service(PenaltyService, db)
    story = case_story()
    for env in story[:3]:
        assert penalty.apply(env) is not None

    raw = db.cases.find_one({"_id": CASE})
    assert "snapshot" not in raw and "facts" not in raw and isinstance(raw[packing.PACKED], bytes)
    assert raw["fact_ids"] == [e["event_id"] for e in story[:3]]  # kept readable (fact status, dedupe)
    assert {"dept", "version", "due_at", "findings_open", "findings_count", "outbox"} <= set(raw)
    full = packing.unpack_from(db.cases, raw)
    assert full["snapshot"]["case_id"] == CASE and len(full["facts"]) == 3

    # every reader: the same answer from the packed document and from the old form of it
    packed_answers = (penalty.get_case(CASE), penalty_store.rebuild_list(db), penalty.list_cases(dept=SCJG))
    restore(db.cases, full, packing.DEFAULT_LAYOUT)  # as stored before this change
    assert db.cases.find_one({"_id": CASE})["snapshot"] == full["snapshot"]
    old_answers = (penalty.get_case(CASE), penalty_store.rebuild_list(db), penalty.list_cases(dept=SCJG))
    assert packed_answers == old_answers
    assert packed_answers[0]["case"]["case_no"] == "营市监立〔2026〕901号"
    assert packed_answers[0]["timeline"] and len(packed_answers[0]["facts"]) == 3
    assert [c["case_id"] for c in packed_answers[2]["items"]] == [CASE]

    # the next save of an old document packs it; nothing of it is lost
    penalty.apply(story[3])
    raw = db.cases.find_one({"_id": CASE})
    assert "snapshot" not in raw and raw["version"] == full["version"] + 1
    after = penalty.get_case(CASE)
    assert after["decision_no"] == "营市监罚〔2026〕901号" and len(after["facts"]) == 4
    assert [e["type"] for e in after["timeline"]] == [e["type"] for e in story]


def test_officers_keep_the_queried_paths_lifted_and_every_query_answers_as_before(dbs):
    db = dbs["personnel"]
    personnel = service(PersonnelService, db, datetime.now(CST) + timedelta(hours=1))  # (facts of now)
    layout = personnel.aggregate("officer").layout
    for officer_id, name, number in OFFICERS:
        personnel.apply(officer_registered(officer_id, name=name))
        personnel.apply(credential_issued(officer_id, number))
    personnel.apply(envelope("officer.updated", {"officer_id": OFFICERS[1][0], "status": "left"}))

    raw = db.officers.find_one({"_id": OFFICERS[0][0]})
    assert raw["snapshot"] == {"status": "active", "name": "王芳", "credential_numbers": ["川A5113220901"]}
    full = packing.unpack_from(db.officers, raw)
    assert full["snapshot"]["credentials"][0]["number"] == "川A5113220901" and "agency_id" in full["snapshot"]

    def answers():
        return (personnel.list_officers(dept=SCJG), personnel.list_officers(status="left"),
                personnel.list_officers(q="王"), personnel.get_credential("川A5113220902"),
                personnel.get_officer(OFFICERS[0][0]))

    packed = answers()
    assert [o["officer_id"] for o in packed[0]["items"]] == [o for o, _, _ in OFFICERS]
    assert packed[0]["items"][0]["credentials"][0]["number"] == "川A5113220901"  # the whole snapshot
    assert [o["officer_id"] for o in packed[1]["items"]] == [OFFICERS[1][0]] and packed[1]["total"] == 1
    assert [o["name"] for o in packed[2]["items"]] == ["王芳"]
    assert packed[3]["holder"]["officer_id"] == OFFICERS[1][0] and packed[3]["holder"]["status"] == "left"
    for officer_id, _, _ in OFFICERS:  # as stored before this change
        restore(db.officers, personnel.aggregate_doc("officer", officer_id), packing.DEFAULT_LAYOUT)
    assert "credentials" in db.officers.find_one({"_id": OFFICERS[0][0]})["snapshot"]
    assert answers() == packed
    for officer_id, _, _ in OFFICERS:
        restore(db.officers, personnel.aggregate_doc("officer", officer_id), layout)
    assert answers() == packed


def test_fact_status_finds_a_fact_in_plain_or_packed_fact_ids(dbs):
    db = dbs["penalty"]
    penalty = service(PenaltyService, db)
    story = case_story()
    for env in story[:2]:
        penalty.apply(env)
    assert penalty.fact_status(story[1]["event_id"]) == {"applied": True, "aggregate": "case", "id": CASE}
    assert penalty.fact_status(story[2]["event_id"]) == {"applied": False}

    # an aggregate that declares its fact ids packed: answered from the packed field
    declared = Aggregate("case", "cases", ("case.*",), packed=packing.PACKED_FIELDS + ("snapshot", "fact_ids"))
    restore(db.cases, penalty.aggregate_doc("case", CASE), declared.layout)
    assert "fact_ids" not in db.cases.find_one({"_id": CASE})
    packed_service = SimpleNamespace(manifest=SimpleNamespace(aggregates=(declared,)), db=db)
    assert EventSourcedService.fact_status(packed_service, story[0]["event_id"]) == \
        {"applied": True, "aggregate": "case", "id": CASE}
    assert EventSourcedService.fact_status(packed_service, story[2]["event_id"]) == {"applied": False}
    assert EventSourcedService.fact_status(packed_service, CASE) == {"applied": False}  # in the facts, not an id
