"""Coordination service on real RabbitMQ and FerretDB: findings from other services land in the
inbox and are triaged through the HTTP API; a supervision case runs end to end; a department cannot
answer another's case; an overdue reply becomes a finding through the deadline sweep."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from nameko import config as nameko_config
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import replace_dependencies

from services.common.chinatime import CST
from services.coordination.service import CoordinationService
from services.gateway.service import GatewayService
from services.kernel.clock import utcnow
from services.personnel.service import PersonnelService
from tests.api_kit import start_api
from tests.helpers import FakeClock, SCJG, STHJ, credential_issued, officer_registered, publish, wait_for

SFJ = "511322-sfj"



@pytest.fixture
def suite(zhifa_config, container_factory):
    patch = nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    clock = FakeClock()
    for cls in (GatewayService, PersonnelService):
        container_factory(cls).start()
    coordination = container_factory(CoordinationService)
    replace_dependencies(coordination, clock=clock)
    coordination.start()
    yield {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config, "clock": clock,
           "api": start_api(zhifa_config, container_factory)}
    patch.stop()


def inbox_entry(suite, key):
    resp = suite["api"].get(f"/api/v1/inbox/{key}", as_="sup")
    return resp.json() if resp.status_code == 200 else None


def finding_payload(key: str, as_of: datetime, dept: str = SCJG, severity: str = "serious") -> dict:
    rule, subject_type, subject_id = key.split(":", 2)
    return {"finding_key": key, "rule_id": rule, "severity": severity, "dept": dept, "subject_type": subject_type,
            "subject_id": subject_id, "as_of": as_of.isoformat(), "evidence": {"officers": 1},
            "message": "调查时执法人员不足2人"}


def relay(source: str, type_: str, payload: dict) -> None:
    """Publish a finding event as service `source` would (its outbox relay)."""
    import uuid

    dispatch = event_dispatcher()
    dispatch(source, type_, {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
                             "occurred_at": payload["as_of"], "dept": payload["dept"], "source": source,
                             "payload": payload})


# ---- the findings inbox -----------------------------------------------------------------------------------

def test_personnel_finding_lands_in_the_inbox_is_triaged_counted_and_escalates(suite):
    api = suite["api"]
    publish(suite["amqp"], [officer_registered("511322-scjg-0009", kind="auxiliary"),
                            credential_issued("511322-scjg-0009", "川A5113220009")])
    key = "PER-AUX-CREDENTIAL:credential:川A5113220009"
    entry = wait_for(lambda: inbox_entry(suite, key), timeout=40)  # raised once the arrivals settle (10 s)
    assert (entry["source"], entry["dept"], entry["state"], entry["severity"]) == ("personnel", SCJG, "new", "warning")
    assert entry["history"][0]["type"] == "finding.raised"

    # department users do not see the bureau's inbox; the counters are kept for the console
    assert api.get("/api/v1/inbox", as_="scjg").status_code == 403
    counters = wait_for(lambda: (c := api.get("/api/v1/inbox-counters", as_="sup").json())["total"] == 1 and c)
    assert counters["by_state"] == {"new": 1} and counters["by_dept"] == {SCJG: 1}
    assert counters["by_rule"] == {"PER-AUX-CREDENTIAL": 1}
    assert api.get("/api/v1/inbox-counters", as_="sthj").json()["total"] == 0   # forced to its own department

    # triage by a supervisor; a department user may not
    assert api.post(f"/api/v1/inbox/{key}/acknowledge", {"note": "已阅"}, as_="scjg").status_code == 403
    resp = api.post(f"/api/v1/inbox/{key}/acknowledge", {"note": "已阅"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["state"] == "acknowledged", resp.text
    again = api.post(f"/api/v1/inbox/{key}/acknowledge", {}, as_="sup", dept=SFJ)
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    bad = api.post(f"/api/v1/inbox/{key}/dismiss", {"reason": "无"}, as_="sup", dept=SFJ)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "reason"
    wrong_unit = api.post(f"/api/v1/inbox/{key}/assign", {"assignee": "李娜"}, as_="sup", dept=SCJG)
    assert wrong_unit.status_code == 403   # only the justice bureau handles findings, in the domain too

    # not handled within the warning response time (10 working days): escalated by the sweep, counted
    suite["clock"].shift = timedelta(days=30)
    wait_for(lambda: api.get("/api/v1/inbox-counters", as_="sup").json()["escalated"] == 1, timeout=15)
    assert inbox_entry(suite, key)["escalated"] is True
    listing = api.get("/api/v1/inbox", as_="sup", escalated="true").json()
    assert [i["finding_key"] for i in listing["items"]] == [key] and listing["total"] == 1

    resp = api.post(f"/api/v1/inbox/{key}/assign", {"assignee": "李娜"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["state"] == "assigned"
    counters = wait_for(lambda: (c := api.get("/api/v1/inbox-counters", as_="sup").json())["by_state"] == {"assigned": 1}
                        and c)
    assert counters["escalated"] == 0 and counters["total"] == 1


def test_an_interleaved_relay_cannot_reopen_a_resolved_penalty_finding(suite):
    key = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0031"
    raised_at = datetime.now(CST) - timedelta(days=2)
    # the resolution (later as_of) overtakes the raise it answers
    relay("penalty", "finding.resolved", finding_payload(key, raised_at + timedelta(days=1)))
    wait_for(lambda: inbox_entry(suite, key))
    relay("penalty", "finding.raised", finding_payload(key, raised_at))
    entry = wait_for(lambda: (e := inbox_entry(suite, key)) and len(e["history"]) == 2 and e)
    assert entry["state"] == "resolved" and entry["source"] == "penalty" and entry["episodes"] == 1
    assert listed(suite, key, "open") == [] and listed(suite, key, None) == ["resolved"]  # the inbox opens on open ones
    # a later raise is a new episode
    relay("penalty", "finding.raised", finding_payload(key, raised_at + timedelta(days=2)))
    entry = wait_for(lambda: (e := inbox_entry(suite, key)) and len(e["history"]) == 3 and e)
    assert (entry["state"], entry["episodes"]) == ("new", 2)
    assert listed(suite, key, "open") == ["new"] and listed(suite, key, "resolved") == []


def listed(suite, key: str, state: str | None) -> list[str]:
    """The states of `key`'s entries that the supervisor's inbox lists with the `state` filter (None: all)."""
    resp = suite["api"].get("/api/v1/inbox", as_="sup", rule_id=key.split(":", 1)[0], limit=500,
                            **({"state": state} if state else {}))
    assert resp.status_code == 200, resp.text
    return [item["state"] for item in resp.json()["items"] if item["finding_key"] == key]


def test_two_racing_acknowledgements_exactly_one_wins(suite):
    key = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0040"
    relay("penalty", "finding.raised", finding_payload(key, datetime.now(CST)))
    wait_for(lambda: inbox_entry(suite, key))
    results = []

    def ack():
        results.append(suite["api"].post(f"/api/v1/inbox/{key}/acknowledge", {}, as_="sup", dept=SFJ).status_code)

    threads = [threading.Thread(target=ack) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    assert [x["action"] for x in inbox_entry(suite, key)["log"]] == ["acknowledged"]


# ---- supervision cases --------------------------------------------------------------------------------------

REF = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0031"


def open_case(api, **extra) -> str:
    body = {"kind": "routine", "origin": "finding", "depts": [SCJG], "title": "调查取证执法人员不足2人",
            "origin_refs": [REF], **extra}
    resp = api.post("/api/v1/supervision-cases", body, as_="sup", dept=SFJ)
    assert resp.status_code == 200, resp.text
    return resp.json()["case_id"]


def test_a_supervision_case_runs_end_to_end_and_departments_see_and_answer_only_their_own(suite):
    api = suite["api"]
    assert api.post("/api/v1/supervision-cases", {"kind": "routine", "origin": "initiative", "depts": [SCJG],
                                                  "title": "自立"}, as_="scjg").status_code == 403
    relay("penalty", "finding.raised", finding_payload(REF, datetime.now(CST)))
    wait_for(lambda: inbox_entry(suite, REF))
    case_id = open_case(api)
    entry = inbox_entry(suite, REF)     # the finding the case was opened from is handled: no escalation
    assert (entry["state"], entry["case_ids"]) == ("in_case", [case_id])
    base = f"/api/v1/supervision-cases/{case_id}"
    resp = api.post(f"{base}/documents", {"target": SCJG, "doc_kind": "opinion", "doc_no": "营司监意〔2026〕1号",
                                          "rectification_required": True, "summary": "请说明情况并整改"},
                    as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["tracks"] == {SCJG: "awaiting_reply"}, resp.text

    # another department can neither see nor answer the case
    assert api.get(base, as_="sthj").status_code == 404
    assert api.get("/api/v1/supervision-cases", as_="sthj").json()["total"] == 0
    refused = api.post(f"{base}/reply", {"content": "代为答复"}, as_="sthj")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.post(f"{base}/reply", {"content": "答复"}, as_="sup", dept=SCJG).status_code == 403  # role

    resp = api.post(f"{base}/reply", {"content": "已补签并组织学习", "rectification_plan": "月内自查"}, as_="scjg")
    assert resp.status_code == 200 and resp.json()["tracks"] == {SCJG: "rectifying"}, resp.text
    resp = api.post(f"{base}/rectification", {"content": "自查 37 件，补正 2 件"}, as_="scjg")
    assert resp.status_code == 200 and resp.json()["tracks"] == {SCJG: "to_verify"}
    early = api.post(f"{base}/close", {"conclusion": "办结"}, as_="sup", dept=SFJ)
    assert early.status_code == 409
    resp = api.post(f"{base}/verify", {"target": SCJG, "passed": True, "comment": "整改到位"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["tracks"] == {SCJG: "settled"}
    resp = api.post(f"{base}/close", {"conclusion": "整改到位，予以办结"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["status"] == "closed"

    case = api.get(base, as_="scjg").json()
    assert case["status"] == "closed" and [t["dept"] for t in case["tracks"]] == [SCJG]
    assert [f["type"] for f in case["history"]] == ["supervision.opened", "supervision.document_issued",
                                                    "supervision.replied", "supervision.rectified",
                                                    "supervision.verified", "supervision.closed"]
    assert case["tracks"][0]["documents"][0]["doc_no"] == "营司监意〔2026〕1号"
    assert api.get("/api/v1/supervision-cases", as_="scjg").json()["items"][0]["case_id"] == case_id


def test_an_overdue_reply_raises_a_finding_through_the_sweep_and_a_late_reply_clears_it(suite):
    api = suite["api"]
    case_id = open_case(api)
    today = datetime.now(CST).date().isoformat()
    resp = api.post(f"/api/v1/supervision-cases/{case_id}/documents",
                    {"target": SCJG, "doc_kind": "notice", "doc_no": "营司监通〔2026〕7号", "reply_due": today},
                    as_="sup", dept=SFJ)
    assert resp.status_code == 200, resp.text
    with ServiceRpcClient("coordination") as coordination:
        assert coordination.list_findings()["total"] == 0
        suite["clock"].shift = timedelta(days=3)     # no new fact: only the sweep can notice
        found = wait_for(lambda: (f := coordination.list_findings(dept=SCJG))["total"] == 1 and f, timeout=15)
    [finding] = found["items"]
    assert finding["rule_id"] == "COO-SUP-REPLY-OVERDUE" and finding["subject_id"] == f"{case_id}:{SCJG}"
    assert finding["evidence"]["doc_no"] == "营司监通〔2026〕7号"
    # the service's own finding lands in its inbox like any other
    key = finding["finding_key"]
    assert wait_for(lambda: inbox_entry(suite, key), timeout=15)["source"] == "coordination"

    resp = api.post(f"/api/v1/supervision-cases/{case_id}/reply", {"content": "迟到的答复"}, as_="scjg")
    assert resp.status_code == 200, resp.text
    entry = wait_for(lambda: (e := inbox_entry(suite, key)) and e["state"] == "resolved" and e, timeout=15)
    assert entry["resolved_at"] is not None
    case = api.get(f"/api/v1/supervision-cases/{case_id}", as_="sup").json()
    assert case["findings"] == [] and case["tracks"][0]["late"][0]["what"] == "reply"


# ---- complaints, normative documents, monitoring devices ------------------------------------------------------

def test_a_complaint_is_routed_answered_only_by_its_department_and_its_complainant_is_masked(suite):
    api = suite["api"]
    resp = api.post("/api/v1/complaints", {"channel": "hotline_12345", "summary": "某超市销售过期食品",
                                           "complainant_name": "王某", "complainant_phone": "13800000000",
                                           "party_id": "91511322MA0000001X"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200, resp.text
    cid = resp.json()["complaint_id"]
    assert api.post(f"/api/v1/complaints/{cid}/route", {"target": SCJG}, as_="sup", dept=SFJ).status_code == 200
    assert api.post(f"/api/v1/complaints/{cid}/answer", {"answer": "代答"}, as_="sthj").status_code == 403
    assert api.get(f"/api/v1/complaints/{cid}", as_="sthj").status_code == 404
    resp = api.post(f"/api/v1/complaints/{cid}/answer", {"answer": "已现场检查并立案"}, as_="scjg")
    assert resp.status_code == 200 and resp.json()["status"] == "answered", resp.text
    resp = api.post(f"/api/v1/complaints/{cid}/feedback", {"satisfied": True}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["status"] == "closed"
    seen_by_bureau = api.get(f"/api/v1/complaints/{cid}", as_="sup").json()
    assert seen_by_bureau["complainant"]["phone"] != "13800000000"            # masked for the supervisor
    assert api.get(f"/api/v1/complaints/{cid}", as_="scjg").json()["complainant"]["phone"] == "13800000000"


def test_a_device_used_before_publication_is_a_finding_and_a_late_filing_is_one_too(suite):
    api = suite["api"]
    device = "511322-scjg-cam-0001"
    assert api.post(f"/api/v1/devices/{device}/register", {"location": "城南农贸市场"}, as_="scjg").status_code == 200
    # the department's own system reports a use before review and publication
    today = datetime.now(CST).date().isoformat()
    from tests.helpers import envelope
    publish(suite["amqp"], [envelope("device.used", {"device_id": device, "used_on": today, "case_id": "C-1"})])
    with ServiceRpcClient("coordination") as coordination:
        found = wait_for(lambda: (f := coordination.list_findings(rule_id="COO-DEVICE-UNPUBLISHED"))["total"] == 1
                         and f, timeout=15)
        assert found["items"][0]["dept"] == SCJG
        assert api.post(f"/api/v1/devices/{device}/publish", {}, as_="scjg").status_code == 409   # not reviewed
        assert api.post(f"/api/v1/devices/{device}/review", {"passed": True}, as_="sup", dept=SFJ).status_code == 200
        assert api.post(f"/api/v1/devices/{device}/publish", {}, as_="scjg").status_code == 200
        assert [d["device_id"] for d in api.get("/api/v1/public/devices", as_=None).json()["items"]] == [device]

        issued = (datetime.now(CST).date() - timedelta(days=40)).isoformat()
        resp = api.post("/api/v1/normative-documents", {"title": "行政处罚裁量基准实施办法", "doc_no": "营市监规〔2026〕1号",
                                                        "issued_on": issued}, as_="scjg")
        assert resp.status_code == 200, resp.text
        doc_id = resp.json()["doc_id"]
        late = wait_for(lambda: (f := coordination.list_findings(rule_id="COO-NORM-FILING-LATE"))["total"] == 1 and f)
        assert late["items"][0]["subject_id"] == doc_id
        assert api.post(f"/api/v1/normative-documents/{doc_id}/file", {}, as_="sthj").status_code == 403
        assert api.post(f"/api/v1/normative-documents/{doc_id}/file", {}, as_="scjg").status_code == 200
        assert coordination.list_findings(rule_id="COO-NORM-FILING-LATE")["total"] == 0


def test_a_jurisdiction_dispute_is_answered_by_the_other_party_and_settled_by_the_bureau(suite):
    api = suite["api"]
    resp = api.post("/api/v1/disputes", {"matter": "农贸市场内无证经营食品的查处", "parties": [STHJ],
                                         "filed_on": "2026-01-20"}, as_="scjg")
    assert resp.status_code == 200, resp.text
    dispute_id = resp.json()["dispute_id"]
    base = f"/api/v1/disputes/{dispute_id}"
    assert api.post(f"{base}/answer", {"agrees": True}, as_="scjg").status_code == 403   # not the other party
    resp = api.post(f"{base}/answer", {"agrees": False, "filed_on": "2026-01-15", "position": "本局先立案"}, as_="sthj")
    assert resp.status_code == 200 and resp.json()["first_filer"] == STHJ, resp.text
    assert api.post(f"{base}/agree", {"lead_dept": STHJ}, as_="scjg").status_code == 403
    resp = api.post(f"{base}/agree", {"lead_dept": STHJ, "note": "按最先立案原则"}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["status"] == "agreed"
    assert api.get(base, as_="sthj").json()["lead_dept"] == STHJ
    assert api.get("/api/v1/disputes", as_="scjg").json()["total"] == 1


# ---- case-file review draw from the penalty service's closed cases, evaluation, monthly report -------------------

@pytest.fixture
def county(zhifa_config, container_factory):
    from services.penalty.service import PenaltyService

    for cls in (GatewayService, PenaltyService, CoordinationService):
        container_factory(cls).start()
    return {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config, "api": start_api(zhifa_config, container_factory)}


def test_case_files_are_drawn_reproducibly_prefilled_from_findings_scored_and_evaluated(county):
    from tests.helpers import envelope

    api = county["api"]
    cases = [f"511322-scjg-2026-{i:04d}" for i in range(1, 7)]
    for case_id in cases:
        publish(county["amqp"], [envelope("case.filed", {"case_id": case_id, "item_code": "C99", "summary": "测试"}),
                                 envelope("case.closed", {"case_id": case_id, "reason": "no_penalty"})])
    with ServiceRpcClient("penalty") as penalty:
        wait_for(lambda: penalty.list_cases(stage="closed")["total"] == 6, timeout=20)
    # the penalty findings about these cases (item not held) reach the inbox before the draw
    wait_for(lambda: api.get("/api/v1/inbox", as_="sup", rule_id="PEN-ITEM-NOT-HELD").json()["total"] == 6, timeout=20)

    year = datetime.now(CST).year
    first = api.post("/api/v1/review-plans", {"year": year, "per_dept": 3, "seed": "县司法局评查抽签"}, as_="sup",
                     dept=SFJ)
    assert first.status_code == 200, first.text
    again = api.post("/api/v1/review-plans", {"year": year, "per_dept": 3, "seed": "县司法局评查抽签"}, as_="sup",
                     dept=SFJ)
    plan = api.get(f"/api/v1/review-plans/{first.json()['plan_id']}", as_="sup").json()
    replay = api.get(f"/api/v1/review-plans/{again.json()['plan_id']}", as_="sup").json()
    assert plan["population_size"] == 6 and len(plan["files"]) == 3
    assert [f["case_id"] for f in plan["files"]] == [f["case_id"] for f in replay["files"]]      # same seed, same files
    assert plan["population_digest"] == replay["population_digest"]
    assert all(f["prefilled"] == {"agency": ["PEN-ITEM-NOT-HELD"]} for f in plan["files"])
    assert api.post("/api/v1/review-plans", {"year": year}, as_="scjg").status_code == 403

    target = plan["files"][0]["case_id"]
    scored = api.post(f"/api/v1/review-plans/{plan['plan_id']}/score", {"case_id": target, "failed": ["time_limits"]},
                      as_="sup", dept=SFJ)
    assert scored.status_code == 200, scored.text
    assert scored.json()["results"]["511322-scjg"]["average"] == 95.0
    bad = api.post(f"/api/v1/review-plans/{plan['plan_id']}/score", {"case_id": target, "failed": ["nonsense"]},
                   as_="sup", dept=SFJ)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "failed"

    entered = api.post(f"/api/v1/evaluation/{year}/scores", {"target": SCJG, "indicator": "training", "score": 80,
                                                             "evidence": "培训台账齐全"}, as_="sup", dept=SFJ)
    assert entered.status_code == 200, entered.text
    scores = api.get(f"/api/v1/evaluation/{year}", as_="sup").json()
    [row] = [r for r in scores["departments"] if r["dept"] == SCJG]
    by = {i["indicator"]: i for i in row["items"]}
    assert by["training"]["score"] == 80 and by["training"]["evidence"]["evidence"] == "培训台账齐全"
    inbox = api.get("/api/v1/inbox", as_="sup", dept=SCJG, limit=500).json()["items"]
    serious = sum(1 for i in inbox if i["open"] and i["severity"] in ("serious", "critical"))
    assert serious >= 6    # the six item-not-held findings at least
    assert by["findings"]["evidence"]["open_serious"] == serious and by["findings"]["score"] == max(0, 100 - 10 * serious)
    assert row["rank"] >= 1 and row["complete"] is True

    month = datetime.now(CST).strftime("%Y-%m")
    report = api.get("/api/v1/reports/monthly", as_="scjg", month=month).json()
    assert report["dept"] == SCJG and report["findings"]["raised"] == 6
    assert report["penalty_cases"]["filed"] == 6 and report["penalty_cases"]["closed"] == 6   # from the penalty service
    assert api.get("/api/v1/reports/monthly", as_="sup", month="2026-13").status_code == 400


def test_monthly_reports_missing_after_the_due_day_are_findings(suite):
    api = suite["api"]
    first = datetime.now(CST).date().replace(day=1)
    month = (first - timedelta(days=40)).strftime("%Y-%m")     # long past its due day (the 10th of the next month)
    resp = api.post(f"/api/v1/reports/submissions/{month}/open", {"roster": [SCJG, STHJ]}, as_="sup", dept=SFJ)
    assert resp.status_code == 200 and resp.json()["depts"] == [SCJG, STHJ], resp.text
    with ServiceRpcClient("coordination") as coordination:
        assert {f["dept"] for f in coordination.list_findings(rule_id="COO-REPORT-MISSING")["items"]} == {SCJG, STHJ}
        resp = api.post(f"/api/v1/reports/submissions/{month}/submit", {}, as_="scjg")
        assert resp.status_code == 200 and resp.json()["missing"] == [STHJ], resp.text
        assert [f["dept"] for f in coordination.list_findings(rule_id="COO-REPORT-MISSING")["items"]] == [STHJ]
    assert api.post(f"/api/v1/reports/submissions/{month}/submit", {}, as_="scjg").status_code == 409
    status = api.get(f"/api/v1/reports/submissions/{month}", as_="sup").json()
    assert status["late"] == [SCJG] and status["missing"] == [STHJ]


def test_an_entry_saved_but_not_counted_is_counted_by_the_repair(suite):
    import pymongo

    from services.coordination import store
    from services.coordination.domain import inbox as ib

    key = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0077"
    relay("penalty", "finding.raised", finding_payload(key, datetime.now(CST)))
    wait_for(lambda: suite["api"].get("/api/v1/inbox-counters", as_="sup").json()["total"] == 1)
    db = pymongo.MongoClient(suite["config"]["MONGO_URI"])[f"{suite['config']['DB_PREFIX']}coordination"]
    # as if the process had stopped right after saving the entry: no count of it at all
    db.inbox_counted.delete_many({})
    db.inbox_counters.delete_many({})
    assert store.counters(db)["total"] == 0
    assert store.repair_counts(db, ib.counter_key) == 1
    assert store.repair_counts(db, ib.counter_key) == 0          # idempotent
    counted = store.counters(db)
    assert counted["total"] == 1 and counted["by_state"] == {"new": 1} and counted["by_dept"] == {SCJG: 1}


def test_a_save_counted_twice_in_one_process_reads_once(servers):
    """after_save and the relay both count a save: the second call reads nothing; a repair reads."""
    import uuid

    import pymongo

    from services.coordination import store

    from tests.db_recorder import Recorder

    recorder = Recorder()
    seen = recorder.seen
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, event_listeners=[recorder])
    db = client[f"t{uuid.uuid4().hex[:8]}_coordination"]
    key = {"dept": "511322-scjg", "rule_id": "PEN-X", "severity": "warning", "state": "new", "escalated": False}
    try:
        assert store.count(db, "e1", 1, key) is True
        seen.clear()
        assert store.count(db, "e1", 1, key) is False and seen == []
        assert store.count(db, "e1", 2, {**key, "state": "closed"}) is True  # a newer save moves it
        db.inbox_counted.delete_many({})
        db.inbox_counters.delete_many({})
        seen.clear()
        assert store.count(db, "e1", 2, {**key, "state": "closed"}, fresh=True) is True and seen
        assert store.counters(db)["by_state"] == {"closed": 1}
    finally:
        client.drop_database(db.name)
        client.close()
