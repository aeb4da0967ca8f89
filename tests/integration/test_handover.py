"""Criminal-justice handover (行刑衔接) end to end on real RabbitMQ and FerretDB.

The department, the police and the procuratorate each publish their own steps through the ingress
under their own codes (`511322-scjg`, `511322-ga`, `511322-jcy`); a step from a party the handover
is not addressed to is refused (`not_addressee`, a `refused` notice to that party). Deadlines fire
through the sweep with a shifted clock; the three parties act through the HTTP API too, where two
racing decisions end with exactly one accepted; penalty's `case.changed` feeds 以罚代刑.
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import pymongo
import pytest
import requests
from kombu import Connection
from nameko import config as nameko_config
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import replace_dependencies

from services.api import accounts
from services.gateway.service import GatewayService
from services.handover.service import HandoverService
from services.kernel.clock import utcnow
from services.penalty.service import PenaltyService
from services.registry.service import RegistryService
from tests.api_kit import start_api
from tests.helpers import CST, SCJG, STHJ, FakeClock, drain, envelope, publish, rejection_queue, wait_for

GA, GA2, JCY = "511322-ga", "511323-ga", "511322-jcy"
HID = "511322-scjg-YS-2026-003"


@pytest.fixture
def suite(zhifa_config, container_factory):
    patch = nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    clock = FakeClock()
    container_factory(GatewayService).start()
    handover = container_factory(HandoverService)
    replace_dependencies(handover, clock=clock)
    handover.start()
    api = start_api(zhifa_config, container_factory)
    for name, dept in (("ga", GA), ("ga2", GA2), ("jcy", JCY)):  # police and procuratorate users of the API
        api.tokens[name] = accounts.create_user(api.db, name, "dept_user", utcnow(), dept=dept, kind="machine")["token"]
    s = {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config, "clock": clock, "api": api,
         "container_factory": container_factory}
    yield s
    patch.stop()


def db(suite):
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{suite['config']['DB_PREFIX']}handover"]


def step(type_: str, dept: str, when: datetime, hid: str = HID, **payload) -> dict:
    return envelope(f"handover.{type_}", {"handover_id": hid, **payload}, dept, occurred_at=when.isoformat())


def land(suite, *envelopes):
    """Publish facts one by one, each stored before the next."""
    col = db(suite).handovers
    for env in envelopes:
        publish(suite["amqp"], [env])
        wait_for(lambda: col.find_one({"fact_ids": env["event_id"]}))


def handover(suite, as_="sup", hid=HID):
    return suite["api"].get(f"/api/v1/handovers/{hid}", as_=as_)


def handover_where(suite, check, hid=HID, timeout=10):
    return wait_for(lambda: (r := handover(suite, hid=hid)).status_code == 200 and check(body := r.json()) and body,
                    timeout=timeout)


def now() -> datetime:
    return datetime.now(CST).replace(microsecond=0)


def opening(t0: datetime, hid: str = HID, case_id: str = "511322-scjg-2026-0042") -> list[dict]:
    """Raised by a team of two with a report, approved the next hour, transferred to GA with a copy."""
    return [
        step("suspicion_raised", SCJG, t0, hid, case_id=case_id, suspected_crime="涉嫌销售伪劣产品罪",
             officers=["51132200123", "51132200456"], report_ref="营市监移报〔2026〕3号"),
        step("head_decided", SCJG, t0 + timedelta(hours=1), hid, approved=True, head="王建国"),
        step("transferred", SCJG, t0 + timedelta(hours=2), hid, police_dept=GA, police_unit="营山县公安局经侦大队",
             documents=["transfer_letter", "investigation_report", "exhibit_list"], copy_to=JCY),
    ]


def test_each_party_publishes_its_own_steps_and_is_refused_on_others(suite):
    t0 = now() - timedelta(hours=6)
    land(suite, *opening(t0),
         step("received", GA, t0 + timedelta(hours=3), receipt_no="营公经回〔2026〕17号"),
         step("police_decided", GA, t0 + timedelta(hours=5), opened=False, reasons="现有证据不足以证明销售金额达到追诉标准"))
    with Connection(suite["amqp"]) as conn:
        notices = {d: rejection_queue(conn, d) for d in (GA2, SCJG, JCY)}
        # the police of another county (GA decided: no forwarding can come), the department posing as the police
        publish(suite["amqp"], [step("received", GA2, t0 + timedelta(hours=5, minutes=10)),
                                step("police_decided", SCJG, t0 + timedelta(hours=5, minutes=15), opened=True)])
        [wrong_police] = drain(conn, notices[GA2], 1)
        [dept_as_police] = drain(conn, notices[SCJG], 1)
        for notice in (wrong_police, dept_as_police):
            assert notice["status"] == "refused" and notice["service"] == "handover"
            assert [v["rule"] for v in notice["violations"]] == ["not_addressee"]
        assert GA in wrong_police["violations"][0]["message"]
    # the department's own step and, below, the procuratorate it asked are accepted
    land(suite, step("supervision_suggested", SCJG, t0 + timedelta(hours=5, minutes=30), procuratorate_dept=JCY))
    with Connection(suite["amqp"]) as conn:
        q = rejection_queue(conn, "511300-jcy")
        publish(suite["amqp"], [step("supervision_outcome", "511300-jcy", t0 + timedelta(hours=5, minutes=40),
                                     outcome="notice_to_open")])
        [other_jcy] = drain(conn, q, 1)
        assert other_jcy["status"] == "refused" and other_jcy["violations"][0]["rule"] == "not_addressee"
    land(suite, step("supervision_outcome", JCY, t0 + timedelta(hours=5, minutes=45), outcome="notice_to_open"))
    body = handover_where(suite, lambda h: h["status"] == "supervised")
    assert [(e["type"].split(".")[1], e["by"], e["party"]) for e in body["record"]] == [
        ("suspicion_raised", SCJG, "department"), ("head_decided", SCJG, "department"),
        ("transferred", SCJG, "department"), ("received", GA, "police"), ("police_decided", GA, "police"),
        ("supervision_suggested", SCJG, "department"), ("supervision_outcome", JCY, "procuratorate")]
    assert set(body["depts"]) == {SCJG, GA, JCY} and body["anomalies"] == [] and body["findings"] == []
    # each party reads what it is part of; another department does not
    assert handover(suite, as_="ga").status_code == 200 and handover(suite, as_="jcy").status_code == 200
    assert handover(suite, as_="sthj").status_code == 404 and handover(suite, as_="ga2").status_code == 404
    listed = suite["api"].get("/api/v1/handovers", as_="ga").json()
    assert [h["handover_id"] for h in listed["items"]] == [HID] and listed["total"] == 1
    assert suite["api"].get("/api/v1/handovers", as_="sthj").json()["total"] == 0
    counters = wait_for(lambda: (c := suite["api"].get("/api/v1/handover-counters", as_="ga").json())["total"] and c)
    assert counters["by_status"] == {"supervised": 1}


def test_transfer_deadline_fires_through_the_sweep_and_names_the_department(suite):
    t0 = now() - timedelta(hours=3)
    land(suite, *opening(t0)[:2])                               # approved 2 hours ago, not transferred
    assert handover_where(suite, lambda h: h["status"] == "approved")["findings"] == []
    suite["clock"].shift = timedelta(hours=23)                  # 25 hours after the approval
    body = handover_where(suite, lambda h: h["findings"], timeout=15)
    [f] = body["findings"]
    assert f["rule_id"] == "HOV-TRANSFER-LATE" and f["dept"] == SCJG and f["evidence"]["state"] == "overdue"
    with ServiceRpcClient("handover") as rpc:
        page = rpc.list_findings(rule_id="HOV-TRANSFER-LATE")
        assert page["total"] == 1 and page["items"][0]["subject_id"] == HID
        assert rpc.list_findings(dept=GA)["total"] == 0


def test_a_finding_raised_after_the_findings_index_was_built_is_listed(suite):
    # the index is built at the start (`make run`: no handover yet); the findings list reads only it then
    from services.kernel.findings_index import FindingsIndex
    index = FindingsIndex(db(suite).handovers)
    index.build()
    assert index.built()
    t0 = now() - timedelta(hours=3)
    land(suite, *opening(t0)[:2])
    suite["clock"].shift = timedelta(hours=23)
    handover_where(suite, lambda h: h["findings"], timeout=15)
    with ServiceRpcClient("handover") as rpc:
        page = wait_for(lambda: (p := rpc.list_findings(rule_id="HOV-TRANSFER-LATE"))["total"] and p)
        assert page["items"][0]["subject_id"] == HID
    figures = suite["api"].get("/api/v1/findings-figures").json()
    assert any(r["rule_id"] == "HOV-TRANSFER-LATE" and r["source"] == "handover" for r in figures["rows"])


def test_police_decision_deadline_is_the_police_finding_and_visible_to_the_police(suite):
    t0 = now() - timedelta(hours=5)
    land(suite, *opening(t0), step("received", GA, t0 + timedelta(hours=3)))
    suite["clock"].shift = timedelta(days=6)                    # 3 natural days (+ any rest days) have passed
    body = handover_where(suite, lambda h: any(f["rule_id"] == "HOV-POLICE-DECISION-LATE" for f in h["findings"]),
                          timeout=15)
    [f] = [f for f in body["findings"] if f["rule_id"] == "HOV-POLICE-DECISION-LATE"]
    assert f["dept"] == GA and f["evidence"]["party"] == GA
    with ServiceRpcClient("handover") as rpc:                  # the police's own findings
        assert [x["rule_id"] for x in rpc.list_findings(dept=GA)["items"]] == ["HOV-POLICE-DECISION-LATE"]
        assert rpc.list_findings(dept=SCJG)["total"] == 0


def post_step(suite, as_, name, hid=HID, at=None, **params):
    body = {"params": params, **({"at": at.isoformat()} if at else {})}
    return suite["api"].post(f"/api/v1/handovers/{hid}/steps/{name}", body, as_=as_)


def test_parties_act_through_the_api_and_two_racing_decisions_end_with_one(suite):
    t0 = now() - timedelta(hours=4)
    land(suite, *opening(t0))
    assert post_step(suite, "ga2", "received").json()["error"]["code"] == "not_addressee"
    refused = post_step(suite, "scjg", "police_decided", opened=True)
    assert refused.status_code >= 400 and refused.json()["error"]["code"] == "not_addressee"
    assert post_step(suite, "ga", "received", receipt_no="HZ-1").status_code == 200
    bad = post_step(suite, "ga", "police_decided", opened="yes")
    assert bad.status_code == 422 or bad.status_code == 400
    assert "opened" in str(bad.json())
    answers: list = []

    def decide(opened, when):
        answers.append(post_step(suite, "ga", "police_decided", at=when, opened=opened, reasons="审查结论"))

    # the later-dated decision may be saved first: the earlier-dated one must not displace it afterwards
    later = now()
    threads = [threading.Thread(target=decide, args=(v, w)) for v, w in ((True, later), (False, later - timedelta(minutes=5)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and codes[1] != 200, [r.text for r in answers]
    loser = next(r for r in answers if r.status_code != 200)
    assert loser.json()["error"]["code"] == "illegal_transition"
    body = handover_where(suite, lambda h: h["police_decisions"])
    assert len(body["police_decisions"]) == 1


def test_reverse_handover_by_the_police_must_be_opened_by_the_department(suite):
    rid = "511322-ga-FX-2026-001"
    land(suite, step("returned", GA, now() - timedelta(hours=1), rid, to_dept=SCJG,
                     reason="犯罪事实显著轻微，不需要追究刑事责任，但依法应当给予行政处罚"))
    body = handover_where(suite, lambda h: h["status"] == "returned", hid=rid)
    assert body["dept"] == SCJG and body["origin"] == "reverse"
    assert suite["api"].get(f"/api/v1/handovers/{rid}", as_="scjg").status_code == 200
    suite["clock"].shift = timedelta(days=40)                   # long past 15 working days
    body = handover_where(suite, lambda h: h["findings"], hid=rid, timeout=15)
    assert [f["rule_id"] for f in body["findings"]] == ["HOV-REVERSE-NOT-OPENED"]
    refused = post_step(suite, "sthj", "penalty_case_opened", hid=rid, case_id="511322-sthj-2026-0001")
    assert refused.json()["error"]["code"] == "not_owner"
    assert post_step(suite, "scjg", "penalty_case_opened", hid=rid, case_id="511322-scjg-2026-0099",
                     mode="opened").status_code == 200
    body = handover_where(suite, lambda h: h["status"] == "penalty_case_opened", hid=rid)
    assert [f["rule_id"] for f in body["findings"]] == ["HOV-REVERSE-NOT-OPENED"]  # opened, but late


def test_penalty_without_handover_is_penalty_instead_of_crime(suite):
    """Penalty publishes `case.changed` with the item's legal basis (from its registry projection); a case
    on an item citing 《产品质量法》第五十条 whose sales reach the samr plugin's 50,000-yuan threshold
    (《刑法》Art. 140) ends in a fine with no handover: HOV-PENALTY-INSTEAD on the case."""
    suite["container_factory"](RegistryService).start()
    suite["container_factory"](PenaltyService).start()
    cid, code = "511322-scjg-2026-0077", "scjg-cpzlf-050"
    publish(suite["amqp"], [envelope("item.published", {
        "item_code": code, "name": "对销售者在产品中掺杂、掺假的行政处罚", "category": "penalty",
        "legal_basis": [{"law": "《中华人民共和国产品质量法》", "article": "第五十条"}], "effective_from": "2024-01-01"})])
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    wait_for(lambda: client[f"{suite['config']['DB_PREFIX']}penalty"].items.find_one({"_id": code}), timeout=15)
    t0 = now() - timedelta(days=5)
    party = {"type": "org", "id": "91511322MA3C4X0077", "name": "营山县某酒业有限公司"}

    def fact(type_, when, **payload):
        return envelope(type_, {"case_id": cid, **payload}, SCJG, occurred_at=when.isoformat())

    publish(suite["amqp"], [
        fact("case.filed", t0, item_code=code, party=party, measures={"sales_amount": 68000}),
        fact("case.investigated", t0 + timedelta(hours=2), act_kind="evidence", officers=["51132200123", "51132200456"],
             text="现场检查，提取销售台账"),
        fact("case.notified", t0 + timedelta(days=1), hearing_right=True, proposed_kinds=["fine"]),
        fact("case.decided", t0 + timedelta(days=2), decision_no="营市监罚〔2026〕77号", kinds=["fine"],
             fine_amount=136000, party=party, act_code="FAKE-LIQUOR", item_code=code),
    ])
    cases = db(suite).penalty_cases
    doc = wait_for(lambda: (d := cases.find_one({"_id": cid})) and d.get("findings_count") and d, timeout=20)
    [finding] = doc["findings_open"].values()
    assert finding["rule_id"] == "HOV-PENALTY-INSTEAD" and finding["severity"] == "critical"
    hit = finding["evidence"]["thresholds"][0]
    assert hit["id"] == "SAMR-CRIME-140-SALES" and hit["value"] == 68000
    # the department then hands it over: the finding resolves after the linked re-evaluation
    land(suite, *opening(now() - timedelta(hours=3), hid="511322-scjg-YS-2026-077", case_id=cid))
    wait_for(lambda: not (d := cases.find_one({"_id": cid})).get("findings_count") and d, timeout=15)
    # the case found its handover through the link kept on the handover's save (no scan of handovers)
    assert db(suite).case_handovers.find_one({"_id": cid})["handovers"] == ["511322-scjg-YS-2026-077"]


def test_links_from_cases_to_handovers_are_built_at_first_start_and_kept_on_save(servers):
    from services.handover import store

    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000)
    database = client[f"t{uuid.uuid4().hex[:8]}_handover"]
    try:
        database.handovers.insert_many([{"_id": "h1", "snapshot": {"case_id": "c1"}},
                                        {"_id": "h2", "snapshot": {"case_id": "c1"}},
                                        {"_id": "h3", "snapshot": {}}])
        store.ensure_indexes(database)  # stored before the links existed: built once
        assert store.handover_ids_of_case(database, "c1") == ["h1", "h2"]
        assert database.case_handovers.count_documents({}) == 1
        assert store.cases_with_handovers(database) == {"c1"}  # the index of linked cases, built with them
        known: set = set()
        store.link_case(database, "h3", None, "c2", known)
        store.link_case(database, "h3", None, "c2", known)  # known: no second write
        store.link_case(database, "h2", "c1", "c2", known)  # a handover naming another case moves
        assert store.handover_ids_of_case(database, "c1") == ["h1"]
        assert store.handover_ids_of_case(database, "c2") == ["h2", "h3"]
        assert store.cases_with_handovers(database) == {"c1", "c2"}
        database.handovers.update_one({"_id": "h2"}, {"$set": {"snapshot.case_id": "c2"}})
        assert [d["_id"] for d in store.handover_docs_of_case(database, "c2")] == ["h2"]  # h3 names none
        database.case_handovers.delete_many({"_id": "c2"})
        database.linked_cases.delete_many({})
        store.ensure_indexes(database)  # links present: not rebuilt; the index of linked cases is, from them
        assert store.handover_ids_of_case(database, "c2") == []
        assert store.cases_with_handovers(database) == {"c1"}
    finally:
        client.drop_database(database.name)
        client.close()


def test_a_refused_step_is_dead_lettered_never_lost(suite):
    land(suite, *opening(now() - timedelta(hours=3)),           # transferred to GA an hour ago, GA decided
         step("police_decided", GA, now() - timedelta(minutes=40), opened=True))
    bad = step("received", GA2, now() - timedelta(minutes=30))
    publish(suite["amqp"], [bad])
    letters = wait_for(lambda: suite["api"].get("/api/v1/dead-letters", as_="ops").json()["items"], timeout=15)
    assert any("not_addressee" in str(x) for x in letters)
    assert requests.get(f"{suite['api'].base}/api/v1/handovers/{HID}", timeout=10).status_code in (401, 403)


def test_the_transfer_letter_is_made_by_the_documents_service(suite):
    """移送书 with its 抄送 line: the handover fills what it records, the documents service numbers and stores it."""
    from services.documents.service import DocumentsService

    suite["container_factory"](DocumentsService).start()
    land(suite, *opening(now() - timedelta(hours=3)))
    extra = {"agency_name": "营山县市场监督管理局", "party_name": "营山县某酒业有限公司", "cause": "销售掺杂掺假白酒",
             "other_materials": "进货单据复印件"}
    with ServiceRpcClient("handover") as rpc:
        assert rpc.render_letter(HID, facts=extra, dept=STHJ)["error"]["code"] == "not_owner"
        reply = rpc.render_letter(HID, facts={**extra, "suspected_crime": "别的罪名"}, dept=SCJG, formats=["docx"],
                                  request_id="letter-0001")
        assert reply["ok"], reply
        document = reply["document"]
        assert (document["kind"], document["subject_type"], document["subject_id"]) == ("handover_letter", "handover", HID)
        assert "移" in document["number"] and document["number"].endswith("1号")
        again = rpc.render_letter(HID, facts=extra, dept=SCJG, formats=["docx"], request_id="letter-0001")
        assert again["document"]["number"] == document["number"]   # a retry does not take a second number
    with ServiceRpcClient("documents") as docs:
        stored = docs.get_document(document["doc_id"])
        assert stored["fields"]["suspected_crime"] == "涉嫌销售伪劣产品罪"      # the handover's record wins
        assert stored["fields"]["police_agency"] == "营山县公安局经侦大队" and stored["fields"]["procuratorate"] == JCY


def test_the_simulated_year_through_the_ingress_finds_exactly_the_injected_breaches(suite):
    """The simulator's `run` path: the main stream of a demo county (its penalty cases feed penalty's
    `case.changed`), then the handover part in one burst (all three parties, any arrival order) through
    the real ingress; the handover service's stored open findings are exactly the injected ones."""
    from services.personnel.service import PersonnelService
    from services.simulator import handover as sh
    from services.simulator.generator import county_config, simulate

    for cls in (PersonnelService, RegistryService, PenaltyService):
        suite["container_factory"](cls).start()
    sim = simulate(county_config("demo", seed=20250101, year=2025))
    publish(suite["amqp"], sim.events)
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    penalty = client[f"{suite['config']['DB_PREFIX']}penalty"]
    cases = {e["payload"]["case_id"] for e in sim.events if e["type"].startswith("case.")}
    wait_for(lambda: penalty.cases.count_documents({}) == len(cases)
             and penalty.cases_outbox.count_documents({}) == 0, timeout=90)
    comparison = sh.run_live(sim, suite["amqp"], suite["config"]["MONGO_URI"], suite["config"]["DB_PREFIX"],
                             timeout=90, out=lambda *_: None)
    assert comparison.ok, [r.to_dict() for r in comparison.rows if r.missed or r.spurious]
    rules = {r.rule_id for r in comparison.rows if r.matched}
    assert "HOV-PENALTY-CONTINUES" in rules and len(rules) == 16   # the demo injects no 以罚代刑 case
