"""Penalty cases end to end on real RabbitMQ and FerretDB: ingress facts and 网上办案 commands,
rules over the personnel and registry projections, the deadline sweep, the HTTP API, events."""
import json
import uuid
from datetime import datetime, timedelta

import pymongo
import pytest
import requests
from kombu import Connection, Queue
from nameko import config as nameko_config
from nameko.testing.services import replace_dependencies

from services.gateway.service import GatewayService
from services.kernel.clock import utcnow
from services.kernel.messaging import event_exchange
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.api_kit import start_api
from tests.helpers import (FakeClock, CST, SCJG, STHJ, case_list_settled, credential_issued, drain, envelope,
                           officer_registered, publish, relayed, wait_for)

CODE = "330217001000"
FOOD_LAW = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}
TIERS = [("lightest", "从轻"), ("lighter", "较轻"), ("normal", "一般"), ("heavier", "较重"), ("heaviest", "严重")]
OFF1, OFF2, OFF3 = "511322-scjg-0101", "511322-scjg-0102", "511322-scjg-0103"



@pytest.fixture
def suite(zhifa_config, container_factory):
    """Gateway, personnel, registry and penalty; one item with a five-tier standard and three
    officers (OFF3's credential suspended since 2025) already projected into the penalty service."""
    patch = nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    clock = FakeClock()
    for cls in (GatewayService, PersonnelService, RegistryService):
        container_factory(cls).start()
    penalty = container_factory(PenaltyService)
    replace_dependencies(penalty, clock=clock)
    penalty.start()
    s = {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"],
         "config": zhifa_config, "clock": clock, "api": start_api(zhifa_config, container_factory)}
    land(s, "registry", "items", item_published(), standard_published())
    for officer_id, number in ((OFF1, "川A5113220101"), (OFF2, "川A5113220102"), (OFF3, "川A5113220103")):
        land(s, "personnel", "officers", officer_registered(officer_id), credential_issued(officer_id, number))
    land(s, "personnel", "officers", envelope("credential.suspended", {
        "officer_id": OFF3, "credential_no": "川A5113220103", "suspended_on": "2025-01-01", "reason": "涉嫌违纪，暂扣证件"}))
    projections = db(s, "penalty")
    wait_for(lambda: (doc := projections.items.find_one({"_id": CODE})) and doc["version"] == 2)
    wait_for(lambda: projections.officers.count_documents({}) == 3
             and projections.officers.find_one({"_id": OFF3})["version"] == 3)
    yield s
    patch.stop()


# -- helpers ----------------------------------------------------------------------------------------

def db(suite, name):
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{suite['config']['DB_PREFIX']}{name}"]


def land(suite, service: str, collection: str, *envelopes):
    """Publish facts one at a time, each stored and relayed before the next (facts of one aggregate
    written at the same instant are a kernel matter on FerretDB v1, not what these tests are about)."""
    col = db(suite, service)[collection]
    for env in envelopes:
        publish(suite["amqp"], [env])
        wait_for(lambda: (doc := col.find_one({"fact_ids": env["event_id"]})) and relayed(col, doc["_id"]))
    if service == "penalty":  # (and the case list caught up: it lags the cases by CASE_LIST_LAG_MS)
        wait_for(lambda: case_list_settled(col))


def item_published():
    return envelope("item.published", {"item_code": CODE, "name": "对生产经营不符合食品安全标准食品的行政处罚",
                                       "category": "penalty", "legal_basis": [FOOD_LAW],
                                       "effective_from": "2024-01-01"})


def standard_published(ranges=None, start="2024-03-01"):
    ranges = ranges or [(50000 + i * 10000, 60000 + i * 10000) for i in range(5)]
    tiers = [{"tier": t, "name": n, "conditions": f"{n}情节", "amount": {"min": lo, "max": hi}}
             for (t, n), (lo, hi) in zip(TIERS, ranges)]
    return envelope("standard.published", {
        "item_code": CODE, "effective_from": start, "standard_no": f"营市监规〔2024〕{start[5:7]}号",
        "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False}, "tiers": tiers})


def now() -> datetime:
    return datetime.now(CST).replace(microsecond=0)


def party(n: int = 1) -> dict:
    return {"type": "org", "id": f"91511322MA3C4X{n:04d}", "name": f"营山县第{n}食品有限公司"}


def fact(type_: str, case_id: str, when: datetime, **payload) -> dict:
    return envelope(type_, {"case_id": case_id, **payload}, SCJG, occurred_at=when.isoformat())


def story(case_id: str, *, officers=(OFF1, OFF2), fine=75000, tier="normal", n=1, start=None) -> list[dict]:
    """Filed 6 days ago, investigated, notified (no hearing right: the fine is below the threshold),
    decided, served and published: a case with nothing wrong unless the arguments make it so."""
    t0 = start or now() - timedelta(days=6)
    return [
        fact("case.filed", case_id, t0, item_code=CODE, case_no=f"营市监立〔2026〕{n}号", party=party(n),
             summary="群众举报销售过期食品"),
        fact("case.investigated", case_id, t0 + timedelta(days=1), act_kind="evidence", officers=list(officers),
             text="现场检查，提取证据"),
        fact("case.notified", case_id, t0 + timedelta(days=2), hearing_right=False, proposed_kinds=["fine"]),
        fact("case.decided", case_id, t0 + timedelta(days=3), decision_no=f"营市监罚〔2026〕{n}号", kinds=["fine"],
             fine_amount=fine, tier=tier, party=party(n), act_code="FOOD-EXPIRED-SALE", officers=list(officers)),
        fact("case.served", case_id, t0 + timedelta(days=4), method="direct"),
        fact("case.published", case_id, t0 + timedelta(days=4, hours=1), platform="国家企业信用信息公示系统"),
    ]


def get(suite, path, **params):
    """A read through the HTTP API as the justice bureau's supervisor (all departments)."""
    return suite["api"].get(path, as_="sup", **params)


def get_case(suite, case_id):
    resp = get(suite, f"/api/v1/cases/{case_id}")
    return resp.json() if resp.status_code == 200 else None


def case_where(suite, case_id, check, timeout=10):
    return wait_for(lambda: (c := get_case(suite, case_id)) and check(c) and c, timeout=timeout)


def command(suite, case_id, name, params=None, dept=SCJG, body=None):
    """A 网上办案 command through the HTTP API as a user of `dept` (None: the supervisor, naming no dept)."""
    who = {SCJG: "scjg", STHJ: "sthj", None: "sup"}[dept]
    data = body if body is not None else json.dumps({"params": params or {}}, ensure_ascii=False).encode()
    return requests.post(f"{suite['api'].base}/api/v1/cases/{case_id}/commands/{name}", data=data,
                         headers=suite["api"].headers(who, {"Content-Type": "application/json"}), timeout=10)


def penalty_queue(conn: Connection, *keys: str) -> Queue:
    queue = Queue(f"test-penalty-{uuid.uuid4().hex[:6]}", exchange=event_exchange("penalty"), routing_key=keys[0],
                  auto_delete=False)
    queue(conn.channel()).declare()
    return queue


# -- tests --------------------------------------------------------------------------------------------

def test_case_reported_through_ingress_shows_in_api_with_its_timeline(suite):
    cid = "511322-scjg-2026-0001"
    land(suite, "penalty", "cases", *story(cid))

    case = case_where(suite, cid, lambda c: c["stage"] == "served")
    assert [(e["type"], e["label"]) for e in case["timeline"]] == [
        ("case.filed", "立案"), ("case.investigated", "调查取证"), ("case.notified", "告知"),
        ("case.decided", "作出处罚决定"), ("case.served", "送达"), ("case.published", "公示")]
    assert case["timeline"][1]["officers"] == [OFF1, OFF2]
    assert (case["stage_label"], case["decision_no"], case["fine_amount"]) == ("已送达", "营市监罚〔2026〕1号", 75000)
    assert case["findings"] == [] and case["held_facts"] == [] and case["anomaly_facts"] == []
    assert case["case"]["officer_ids"] == [OFF1, OFF2] and case["case"]["item_codes"] == [CODE]
    assert len(case["facts"]) == 6 and case["due_at"]  # payment is due within 15 days of service

    listing = get(suite, "/api/v1/cases", dept=SCJG).json()
    assert [c["case_id"] for c in listing["items"]] == [cid] and listing["total"] == 1
    assert get(suite, "/api/v1/cases", dept=SCJG, stage="served").json()["total"] == 1
    assert get(suite, "/api/v1/cases", dept=SCJG, stage="filed").json()["total"] == 0
    assert get(suite, "/api/v1/cases", dept=STHJ).json()["items"] == []
    assert get(suite, "/api/v1/cases", overdue="true").json()["total"] == 0

    bad = get(suite, "/api/v1/cases", stage="decidedish")
    assert bad.status_code == 400 and "未知的案件阶段" in bad.json()["error"]["message"]
    assert get(suite, "/api/v1/cases", overdue="maybe").status_code == 400
    assert get(suite, "/api/v1/cases", limit="0").status_code == 400
    missing = get(suite, "/api/v1/cases/511322-scjg-2026-9999")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "案件不存在"


def test_single_officer_raises_officers_min_and_finding_is_dispatched(suite):
    cid = "511322-scjg-2026-0002"
    with Connection(suite["amqp"]) as conn:
        queue = penalty_queue(conn, "finding.raised")
        land(suite, "penalty", "cases", *story(cid, officers=(OFF1,))[:2])
        [raised] = drain(conn, queue, 1)

    assert (raised["type"], raised["source"]) == ("finding.raised", "penalty")
    assert raised["payload"]["rule_id"] == "PEN-OFFICERS-MIN"
    assert raised["payload"]["finding_key"] == f"PEN-OFFICERS-MIN:case:{cid}"
    case = get_case(suite, cid)
    [finding] = case["findings"]
    assert finding["evidence"]["acts"][0]["officers"] == 1 and "少于 2 人" in finding["message"]
    found = get(suite, "/api/v1/findings", dept=SCJG, source="penalty").json()
    assert [f["rule_id"] for f in found["items"]] == ["PEN-OFFICERS-MIN"]
    assert get(suite, "/api/v1/findings", dept=STHJ).json()["total"] == 0
    assert get(suite, "/api/v1/findings", severity="grave").status_code == 400


def test_suspended_credential_raises_officer_credential_at_once_and_after_a_later_suspension(suite):
    # OFF3's credential was suspended before the act: found when the act is reported
    land(suite, "penalty", "cases", *story("511322-scjg-2026-0003", officers=(OFF1, OFF3))[:2])
    case = case_where(suite, "511322-scjg-2026-0003", lambda c: c["findings"])
    [finding] = case["findings"]
    assert finding["rule_id"] == "PEN-OFFICER-CREDENTIAL" and finding["severity"] == "critical"
    [violation] = finding["evidence"]["violations"]
    assert violation["officer_id"] == OFF3 and "暂扣" in violation["reasons"][0]

    # OFF2 was fine when the case was evaluated; a suspension reported later (effective before the
    # act) re-evaluates the case through the deadline sweep, with no new case fact
    cid = "511322-scjg-2026-0004"
    land(suite, "penalty", "cases", *story(cid)[:2])
    assert get_case(suite, cid)["findings"] == []
    act_day = (now() - timedelta(days=5)).date()
    publish(suite["amqp"], [envelope("credential.suspended", {
        "officer_id": OFF2, "credential_no": "川A5113220102", "suspended_on": (act_day - timedelta(days=3)).isoformat(),
        "reason": "涉嫌违法违纪，接受调查期间暂扣"})])
    case = case_where(suite, cid, lambda c: "PEN-OFFICER-CREDENTIAL" in c["finding_rules"], timeout=15)
    assert [v["officer_id"] for v in case["findings"][0]["evidence"]["violations"]] == [OFF2]
    assert len(case["facts"]) == 2


def test_officer_credentialed_only_for_environment_may_not_act_on_a_market_item(suite):
    # the item gains the market area (执法领域) from 2025; OFF4 holds only an environment credential
    off4 = "511322-scjg-0104"
    land(suite, "registry", "items", envelope("item.amended", {
        "item_code": CODE, "effective_from": "2025-01-01", "area": "market", "reason": "明确执法领域"}))
    land(suite, "personnel", "officers", officer_registered(off4),
         credential_issued(off4, "川A5113220104", areas=("environment",)))
    projections = db(suite, "penalty")
    wait_for(lambda: (doc := projections.items.find_one({"_id": CODE})) and doc["version"] == 3)
    wait_for(lambda: projections.officers.find_one({"_id": off4}))

    cid = "511322-scjg-2026-0012"
    land(suite, "penalty", "cases", *story(cid, officers=(OFF1, off4), n=12)[:2])
    case = case_where(suite, cid, lambda c: "PEN-OFFICER-CREDENTIAL" in c["finding_rules"])
    finding = next(f for f in case["findings"] if f["rule_id"] == "PEN-OFFICER-CREDENTIAL")
    assert finding["evidence"]["area"] == "market" and "不包含 market" in finding["message"]  # the real reason
    [violation] = finding["evidence"]["violations"]  # OFF1's market credential covers the item
    assert violation["officer_id"] == off4 and "不包含 market" in violation["reasons"][0]


def test_fine_outside_tier_is_found_and_cleared_by_an_amended_standard(suite):
    cid = "511322-scjg-2026-0005"
    land(suite, "penalty", "cases", *story(cid, fine=85000, tier="normal"))
    case = case_where(suite, cid, lambda c: c["stage"] == "served")
    [finding] = case["findings"]
    assert finding["rule_id"] == "PEN-FINE-OUT-OF-TIER"
    assert (finding["evidence"]["tier_min"], finding["evidence"]["tier_max"]) == (70000, 80000)
    assert "超出" in finding["message"]

    # a later standard (in force at the decision) widens the normal tier: the case is re-evaluated
    land(suite, "registry", "items", standard_published(
        [(50000, 60000), (60000, 80000), (80000, 90000), (90000, 95000), (95000, 100000)], start="2024-06-01"))
    case_where(suite, cid, lambda c: c["findings"] == [], timeout=15)


def test_case_filed_long_ago_becomes_overdue_through_the_sweep_alone(suite):
    cid = "511322-scjg-2026-0006"
    land(suite, "penalty", "cases", *story(cid, start=now() - timedelta(days=80))[:3])
    case = get_case(suite, cid)
    assert case["findings"] == [] and not case["overdue"]

    suite["clock"].shift = timedelta(days=15)  # 95 days after filing, no decision
    case = case_where(suite, cid, lambda c: "PEN-DECISION-OVERDUE" in c["finding_rules"], timeout=15)
    finding = next(f for f in case["findings"] if f["rule_id"] == "PEN-DECISION-OVERDUE")
    assert "仍未作出处理决定" in finding["message"] and finding["evidence"]["decision_days"] == 90
    assert len(case["facts"]) == 3 and case["overdue"]
    # the case list follows the saved case (store.sync_case runs right after the save): wait for it
    wait_for(lambda: [c["case_id"] for c in get(suite, "/api/v1/cases", overdue="true").json()["items"]] == [cid],
             timeout=10)
    assert get(suite, "/api/v1/cases", overdue="false").json()["total"] == 0


def test_out_of_order_delivery_ends_in_the_same_state(suite):
    in_order, reversed_ = "511322-scjg-2026-0007", "511322-scjg-2026-0008"
    start = now() - timedelta(days=6)
    land(suite, "penalty", "cases", *story(in_order, n=7, start=start))
    land(suite, "penalty", "cases", *reversed(story(reversed_, n=8, start=start)))  # served first, filed last

    a = case_where(suite, in_order, lambda c: c["stage"] == "served")
    b = case_where(suite, reversed_, lambda c: c["stage"] == "served" and not c["held_facts"])

    def state(c):
        return (c["stage"], [(e["type"], e["at"]) for e in c["timeline"]], c["finding_rules"],
                c["held_facts"], c["anomaly_facts"], c["fine_amount"])

    assert state(a) == state(b)
    assert b["anomaly_facts"] == [] and len(b["facts"]) == 6


def test_same_act_fined_twice_is_found_on_both_cases(suite):
    first, second = "511322-scjg-2026-0009", "511322-scjg-2026-0010"
    land(suite, "penalty", "cases", *story(first, n=9)[:4])
    assert get_case(suite, first)["findings"] == []
    land(suite, "penalty", "cases", *story(second, n=9)[:4])  # same party, same act
    assert "PEN-DOUBLE-FINE" in get_case(suite, second)["finding_rules"]
    # the first case is re-evaluated because a decision for its party was indexed
    case = case_where(suite, first, lambda c: "PEN-DOUBLE-FINE" in c["finding_rules"], timeout=15)
    assert case["findings"][0]["evidence"]["others"][0]["case_id"] == second


def test_commands_through_http_converge_on_the_same_model(suite):
    cid = "511322-scjg-2026-0011"
    resp = command(suite, cid, "file_case", {"item_code": CODE, "party": party(11), "case_no": "营市监立〔2026〕11号"})
    assert resp.status_code == 200 and resp.json()["ok"] and resp.json()["case"]["stage"] == "filed"
    assert command(suite, cid, "record_act", {"act_kind": "evidence", "officers": [OFF1, OFF2],
                                              "text": "现场检查"}).status_code == 200

    illegal = command(suite, cid, "serve", {"method": "direct"})
    assert illegal.status_code == 409
    assert illegal.json()["error"]["code"] == "illegal_transition"
    assert illegal.json()["error"]["message"] == "不能送达：尚未作出处罚决定"
    assert command(suite, cid, "archive").status_code == 409

    for name, params in (("notify", {"hearing_right": False}),
                         ("decide", {"decision_no": "营市监罚〔2026〕11号", "kinds": ["fine"], "party": party(11),
                                     "act_code": "FOOD-EXPIRED-SALE", "fine_amount": 75000, "tier": "normal",
                                     "officers": [OFF1, OFF2]}),
                         ("serve", {"method": "direct"}),
                         ("record_payment", {"amount": 75000, "receipt_no": "FS5113222600011"})):
        resp = command(suite, cid, name, params)
        assert resp.status_code == 200, resp.text

    case = get_case(suite, cid)
    assert case["stage"] == "served" and {f["source"] for f in case["facts"]} == {"zhifa"}
    assert [e["type"] for e in case["timeline"]] == ["case.filed", "case.investigated", "case.notified",
                                                     "case.decided", "case.served", "case.paid"]
    assert "PEN-FINE-OUT-OF-TIER" not in case["finding_rules"]

    # bad input is a 400 with a Chinese reason; another department's case is a 403
    checks = [
        (command(suite, cid, "record_act", {"bogus": 1}), 400, "unknown_param"),
        (command(suite, cid, "fly"), 400, "unknown_command"),
        (command(suite, cid, "execute", dept=None), 400, "required"),
        (command(suite, cid, "execute", body=b"[1]"), 400, "not_an_object"),
        (command(suite, cid, "execute", body=b"{nope"), 400, "malformed_json"),
        (command(suite, cid, "execute", {"at": "2030-01-01T08:00:00"}), 400, "invalid_value"),
        (command(suite, cid, "record_act", {"act_kind": "dance", "officers": [OFF1]}), 400, "invalid_value"),
        (command(suite, cid, "execute", dept=STHJ), 403, "forbidden"),
    ]
    for resp, status, code in checks:
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
        assert resp.json()["error"]["message"]
    assert len(get_case(suite, cid)["facts"]) == 6


def listed(suite, case_id) -> int:
    """How often `case_id` is on the first page of SCJG's case list (the supervisor's view)."""
    return [c["case_id"] for c in get(suite, "/api/v1/cases", dept=SCJG).json()["items"]].count(case_id)


def filed_unlisted(suite, n: int):
    """A case filed through the ingress with the case list's lag long (10 s, patched for the caller's `with`):
    (its cases collection, its id) once its fact is applied and relayed — its list sync only recorded."""
    cases, cid = db(suite, "penalty").cases, f"511322-scjg-2026-{n:04d}"
    filed = story(cid, n=n)[0]
    publish(suite["amqp"], [filed])
    wait_for(lambda: (doc := cases.find_one({"fact_ids": filed["event_id"]})) and relayed(cases, doc["_id"]))
    return cases, cid


LONG_LAG = {"CASE_LIST_LAG_MS": 10000}  # (the longest a setting may be)


def test_the_case_list_lags_the_facts_of_a_batch_and_shows_a_clerk_s_command_at_once(suite):
    from services.penalty import store

    with nameko_config.patch(LONG_LAG, clear=False):
        cases, cid = filed_unlisted(suite, 31)
        assert listed(suite, cid) == 0 and not case_list_settled(cases)  # applied and relayed; the sync recorded
        store.settle_lagged()  # (the lag's end, or the service stopping)
        assert listed(suite, cid) == 1 and case_list_settled(cases)
        other = "511322-scjg-2026-0032"
        resp = command(suite, other, "file_case", {"item_code": CODE, "party": party(32), "case_no": "营市监立〔2026〕32号"})
        assert resp.status_code == 200 and resp.json()["ok"]
        assert listed(suite, other) == 1 and case_list_settled(cases)  # a clerk's command: listed when it answers


def test_the_case_list_syncs_a_dead_process_left_are_carried_out_with_no_fact_arriving(suite, monkeypatch):
    from services.penalty import store

    with nameko_config.patch(LONG_LAG, clear=False):
        cases, cid = filed_unlisted(suite, 33)
        store._lagged.clear()  # the process dies before its lagged sync; its record (the intent) stays
        store._intents.clear()
        assert listed(suite, cid) == 0 and not case_list_settled(cases)
        monkeypatch.setattr(store, "INTENT_STALE_SECONDS", 0.5)  # (10 s and every 15 s in a suite)
        monkeypatch.setattr(store, "BATCH_SWEEP_SECONDS", 0.2)
        # no further fact: the periodic sweep (each second here) of a living process finds it
        wait_for(lambda: listed(suite, cid) == 1 and case_list_settled(cases), timeout=15)
