"""Inspection planning end to end on real RabbitMQ and FerretDB: plans, pools and inspection records
through the ingress; draws through the service's commands (announce → perform → publish), verified
from the published record alone by `zhifa verify-draw`; inspection codes signed and checked; rules
over the personnel and registry projections; a deadline rule through the sweep; a racing command."""
from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timedelta

import eventlet
import pymongo
import pytest
from nameko import config as nameko_config
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import replace_dependencies

from services import cli
from services.gateway.service import GatewayService
from services.inspection import draw as dr
from services.inspection.service import InspectionService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.helpers import (CST, SCJG, FakeClock, credential_issued, envelope, officer_registered, publish,
                           relayed, wait_for)

WSJK = "511322-wsjk"
ITEM = "J51132200100"
OFFICERS = {"511322-scjg-0201": "刘洋", "511322-scjg-0202": "陈静", "511322-scjg-0203": "赵磊"}
AUX = "511322-scjg-0299"
POOL = "511322-scjg-MLK-food"
ENTS = [f"9151132200000{n:05d}" for n in range(12)]


def db(suite):
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{suite['config']['DB_PREFIX']}inspection"]


def land(suite, collection: str, *envelopes, database=None):
    col = (database or db(suite))[collection]
    for env in envelopes:
        publish(suite["amqp"], [env])
        wait_for(lambda: (doc := col.find_one({"fact_ids": env["event_id"]})) and relayed(col, doc["_id"]), timeout=15)


@pytest.fixture
def suite(zhifa_config, container_factory):
    patch = nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    clock = FakeClock()
    for cls in (GatewayService, PersonnelService, RegistryService):
        container_factory(cls).start()
    inspection = container_factory(InspectionService)
    replace_dependencies(inspection, clock=clock)
    inspection.start()
    s = {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config, "clock": clock}
    publish(s["amqp"], [envelope("item.published", {
        "item_code": ITEM, "name": "对食品经营者经营活动的监督检查", "category": "inspection", "area": "market",
        "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百一十条"}],
        "effective_from": "2024-01-01"})])
    for n, (officer_id, name) in enumerate(OFFICERS.items()):
        publish(s["amqp"], [officer_registered(officer_id, name=name), credential_issued(officer_id, f"川A51132202{n:02d}")])
    publish(s["amqp"], [officer_registered(AUX, name="王五", kind="auxiliary")])
    projections = db(s)
    wait_for(lambda: projections.items.find_one({"_id": ITEM}), timeout=15)
    wait_for(lambda: projections.officers.count_documents({}) == 4
             and all((projections.officers.find_one({"_id": o}) or {}).get("payload", {}).get("credentials")
                     for o in OFFICERS), timeout=15)
    yield s
    patch.stop()


def pool_listed():
    return envelope("inspection_pool.members_listed", {
        "pool_id": POOL, "name": "营山县食品经营企业名录库",
        "members": [{"id": e, "name": f"营山县第{n}食品商行", "grade": "AB"[n % 2], "region": "511322"}
                    for n, e in enumerate(ENTS)]})


def registered(inspection_id, target, officers, *, dept=SCJG, started=None, approval=True, **kw):
    started = started or datetime.now(CST).replace(microsecond=0) - timedelta(days=1)
    payload = {"inspection_id": inspection_id, "target": {"id": target, "name": "营山县第0食品商行"}, "kind": "routine",
               "agency_id": "A511322-scjg", "officers": list(officers), "item_codes": [ITEM],
               "started_at": started.isoformat(), "ended_at": (started + timedelta(hours=1)).isoformat(), **kw}
    if approval:
        payload["approval"] = {"approved_by": "王建国", "approved_at": (started - timedelta(hours=3)).isoformat()}
    return envelope("inspection.registered", payload, dept)


def test_a_draw_announced_performed_and_published_verifies_from_the_record_alone(suite, tmp_path):
    land(suite, "pools", pool_listed())
    with ServiceRpcClient("inspection") as ins:
        params = {"ratios": {"A": 0.5, "B": 0.33}, "inspectors_per_target": 2}
        conflicts = [{"officer_id": "511322-scjg-0201", "target_id": ENTS[0], "relation": "配偶任该企业股东"}]
        announced = ins.announce_draw("511322-scjg-SJ-01", POOL, params, SCJG, conflicts=conflicts)
        assert announced["ok"], announced
        public = ins.public_draw("511322-scjg-SJ-01")
        assert public["record"] is None and public["announcement_digest"] == dr.digest(public["announcement"])
        # only qualified officers (not the auxiliary) are in the inspector pool
        assert [i["id"] for i in public["announcement"]["inspectors"]] == sorted(OFFICERS)
        assert set(public["announcement"]["seed"]) == {"method", "commitment"}  # the seed itself stays secret
        suite["clock"].shift = timedelta(seconds=2)
        performed = ins.perform_draw("511322-scjg-SJ-01", SCJG)
        assert performed["ok"], performed
        again = ins.perform_draw("511322-scjg-SJ-01", SCJG)
        assert again["error"]["code"] == "already_performed"
        record = ins.public_draw("511322-scjg-SJ-01")["record"]
    assert len(record["result"]["targets"]) == 3 + 2  # ceil(6×0.5) A + ceil(6×0.33) B
    assert all(o != "511322-scjg-0201" for a in record["result"]["assignments"] if a["target_id"] == ENTS[0]
               for o in a["officers"])
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    assert cli.main(["verify-draw", str(path), "--announcement-digest", public["announcement_digest"]], out=out) == 0
    assert "通过" in out.getvalue()
    tampered = copy.deepcopy(record)
    tampered["result"]["targets"][0]["id"] = ENTS[-1] if tampered["result"]["targets"][0]["id"] != ENTS[-1] else ENTS[-2]
    path.write_text(json.dumps(tampered, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    assert cli.main(["verify-draw", str(path)], out=out) == 1
    assert "result_mismatch" in out.getvalue()
    # the drawn targets know they were drawn (enterprise aggregates, derived facts)
    drawn = record["result"]["targets"][0]["id"]
    wait_for(lambda: (doc := db(suite).enterprises.find_one({"_id": drawn}))
             and doc["snapshot"]["drawn"][0]["draw_id"] == "511322-scjg-SJ-01", timeout=15)


def test_drawing_again_needs_a_reason_and_is_a_recorded_finding(suite):
    land(suite, "pools", pool_listed())
    params = {"ratios": {"*": 0.2}, "inspectors_per_target": 2}
    with ServiceRpcClient("inspection") as ins:
        assert ins.announce_draw("SJ-02", POOL, params, SCJG)["ok"]
        refused = ins.announce_draw("SJ-02", POOL, params, SCJG)
        assert refused["error"]["code"] == "reason_required" and refused["error"]["field"] == "reason"
        other = ins.announce_draw("SJ-02", POOL, params, WSJK)
        assert other["error"]["code"] == "forbidden"
        assert ins.announce_draw("SJ-02", POOL, params, SCJG, reason="名录库漏录两家企业，重新公告")["ok"]
        found = wait_for(lambda: (f := ins.list_findings(rule_id="INS-DRAW-REPEATED"))["total"] == 1 and f)
        assert len(found["items"][0]["evidence"]["attempts"]) == 2
        assert len(ins.get_draw("SJ-02")["attempts"]) == 2


def test_racing_performs_exactly_one_wins(suite):
    land(suite, "pools", pool_listed())
    with ServiceRpcClient("inspection") as ins:
        assert ins.announce_draw("SJ-03", POOL, {"ratios": {"*": 0.5}, "inspectors_per_target": 2}, SCJG)["ok"]
    suite["clock"].shift = timedelta(seconds=2)

    def perform():
        with ServiceRpcClient("inspection") as client:
            return client.perform_draw("SJ-03", SCJG)

    pool = eventlet.GreenPool()
    answers = list(pool.imap(lambda _: perform(), range(3)))
    assert sum(1 for a in answers if a.get("ok")) == 1
    assert {a["error"]["code"] for a in answers if not a.get("ok")} == {"already_performed"}


def test_unpublished_draw_result_is_found_by_the_sweep_and_cleared_by_publication(suite):
    land(suite, "pools", pool_listed())
    with ServiceRpcClient("inspection") as ins:
        assert ins.announce_draw("SJ-04", POOL, {"counts": {"*": 1}, "inspectors_per_target": 2}, SCJG)["ok"]
        suite["clock"].shift = timedelta(seconds=2)
        assert ins.perform_draw("SJ-04", SCJG)["ok"]
        assert ins.list_findings(rule_id="INS-DRAW-NOT-PUBLISHED")["total"] == 0
        suite["clock"].shift = timedelta(days=40)  # no new fact: only the sweep can notice
        wait_for(lambda: ins.list_findings(rule_id="INS-DRAW-NOT-PUBLISHED")["total"] == 1, timeout=20)
        assert ins.publish_draw("SJ-04", SCJG, url="https://www.yingshan.gov.cn/sjyk/04.html")["ok"]
        assert ins.list_findings(rule_id="INS-DRAW-NOT-PUBLISHED")["total"] == 1  # published late: stays
        assert ins.get_draw("SJ-04")["status"] == "published"


def test_inspection_records_rules_figures_and_the_inspection_code(suite):
    lawful = registered("JC-001", ENTS[0], list(OFFICERS)[:2], draw_id="SJ-01")
    with_aux = registered("JC-002", ENTS[1], [list(OFFICERS)[0], AUX])
    repeat = registered("JC-003", ENTS[0], list(OFFICERS)[:2], dept=WSJK,
                        started=datetime.now(CST).replace(microsecond=0) - timedelta(hours=5))
    earlier = [registered(f"JC-00{n}", ENTS[0], list(OFFICERS)[1:],
                          started=datetime.now(CST).replace(microsecond=0) - timedelta(days=n - 3)) for n in (4, 5)]
    land(suite, "enterprises", lawful, with_aux, repeat, *earlier)
    with ServiceRpcClient("inspection") as ins:
        rules = lambda dept=None: sorted(f["rule_id"] for f in ins.list_findings(dept=dept)["items"])  # noqa: E731
        found = wait_for(lambda: (r := rules(SCJG)) and r, timeout=15)
        # ENTS[0]: three routine inspections by SCJG this year (cap 2)
        assert found == ["INS-FREQUENCY-CAP", "INS-INSPECTOR-UNQUALIFIED", "INS-OFFICERS-MIN"]
        # WSJK: another department's officers (not its own), its item list does not hold the item, and a
        # repeat inspection of ENTS[0] within 30 days
        assert {"INS-ITEM-NOT-HELD", "INS-REPEAT-INSPECTION"} <= set(rules(WSJK))
        figures = wait_for(lambda: (f := ins.figures(dept=SCJG)) and f["inspections"] == 4 and f, timeout=15)
        assert figures["from_draws"] == 1 and figures["draw_share"] == 0.25 and figures["last_year"] == 0
        assert figures["frequency"] == {"1": 1, "3": 1} and figures["over_cap_by_kind"] == {"routine": 1}
        county = wait_for(lambda: (f := ins.figures()) and f["inspections"] == 5 and f, timeout=15)
        assert county["frequency"] == {"1": 1, "4": 1} and county["enterprises_over_cap"] == 1
        assert county["joint_rate"] == 0.0 and county["joint_rate_target"] == 0.8
        issued = ins.inspection_code(ENTS[0], "JC-001")
        assert issued["dept"] == SCJG
        view = ins.verify_inspection_code(issued["code"])
        assert view["genuine"] and view["lawful"], view
        assert [o["qualified"] for o in view["officers"]] == [True, True]
        assert all(o["credential_no"].startswith("川A511322") for o in view["officers"])
        assert "target" not in json.dumps(view) and ENTS[0] not in json.dumps(view)
        bad = ins.verify_inspection_code(ins.inspection_code(ENTS[1], "JC-002")["code"])
        assert bad["genuine"] and not bad["lawful"] and any("辅助人员" in p for p in bad["problems"])
        forged = issued["code"][:-4] + ("AAAA" if not issued["code"].endswith("AAAA") else "BBBB")
        assert ins.verify_inspection_code(forged)["genuine"] is False
        assert ins.verify_inspection_code("not a code")["error"]["code"] == "malformed_code"
        unit = wait_for(lambda: (u := ins.unit_status(SCJG)) and u["registered_days"] and u, timeout=15)
        assert unit["credential_consequence"] == "none"


def test_overlapping_plans_are_suggested_as_joint_before_they_happen(suite):
    start = datetime.now(CST).date() + timedelta(days=40)
    plans = [envelope("inspection_plan.registered", {
        "plan_id": f"JH-{dept[-4:]}", "kind": "monthly", "title": "月度检查计划", "item_codes": [ITEM],
        "period_from": start.isoformat(), "period_to": (start + timedelta(days=20)).isoformat(),
        "targets": [{"id": ENTS[3], "name": "营山县第3食品商行"}]}, dept) for dept in (SCJG, WSJK)]
    land(suite, "plans", *plans)
    with ServiceRpcClient("inspection") as ins:
        found = wait_for(lambda: (f := ins.list_findings(rule_id="INS-JOINT-SUGGESTED"))["total"] == 1 and f, timeout=15)
        assert set(found["items"][0]["evidence"]["with_depts"]) <= {SCJG, WSJK}
        assert ins.list_plans(dept=SCJG)["total"] == 1


def test_http_routes_from_the_declaration_enforce_roles_and_departments(suite, zhifa_config, container_factory):
    from tests.api_kit import start_api

    api = start_api(zhifa_config, container_factory)
    land(suite, "pools", pool_listed())
    body = {"pool_id": POOL, "params": {"ratios": {"*": 0.25}, "inspectors_per_target": 2}}
    assert api.post("/api/v1/draws/SJ-H1/announce", body, as_=None).status_code == 401
    announced = api.post("/api/v1/draws/SJ-H1/announce", body, as_="scjg")
    assert announced.status_code == 200 and announced.json()["ok"], announced.text
    public = api.get("/api/v1/public/draws/SJ-H1", as_=None)          # 公示: no login
    assert public.status_code == 200 and public.json()["record"] is None
    suite["clock"].shift = timedelta(seconds=2)
    stolen = api.post("/api/v1/draws/SJ-H1/perform", {}, as_="sthj")  # forced to its own department
    assert stolen.status_code == 403 and stolen.json()["error"]["code"] == "forbidden"
    assert api.post("/api/v1/draws/SJ-H1/perform", {}, as_="scjg").json()["ok"]
    record = api.get("/api/v1/public/draws/SJ-H1", as_=None).json()["record"]
    assert dr.verify(record).ok
    land(suite, "enterprises", registered("JC-H1", ENTS[5], list(OFFICERS)[:2]))
    path = f"/api/v1/inspected/{ENTS[5]}/inspections/JC-H1/code"
    assert api.get(path, as_="sthj").status_code == 404                # another department's inspection
    code = api.get(path, as_="scjg")
    assert code.status_code == 200, code.text
    # the registration index is written just after the inspection's save (its listener), so `land`
    # may return a moment before it: wait for the verdict to settle, then judge the last answer
    verify = lambda: api.get("/api/v1/public/inspection-codes/verify", as_=None, code=code.json()["code"])  # noqa: E731
    checked = wait_for(lambda: (r := verify()).status_code == 200 and r.json()["registered"] and r, timeout=10)
    assert checked.json()["lawful"] is True, checked.text
    assert api.get("/api/v1/public/inspection-codes/key", as_=None).json()["algorithm"] == "Ed25519"
    assert api.get(f"/api/v1/inspected/{ENTS[5]}", as_="scjg").status_code == 403  # supervisors and auditors only
    # the unit's registration days (derived per database: every test has its own)
    unit = wait_for(lambda: (r := api.get(f"/api/v1/inspection-units/{SCJG}", as_="scjg")).status_code == 200 and r)
    assert unit.json()["registered_days"] == 1 and unit.json()["credential_consequence"] == "none"
    assert api.get(f"/api/v1/inspection-units/{SCJG}", as_="sthj").status_code == 404


def test_a_draw_on_a_public_beacon_and_a_chosen_team(suite):
    land(suite, "pools", pool_listed())
    params = {"counts": {"*": 2}, "inspectors_per_target": 2}
    team = list(OFFICERS)[:2]
    with ServiceRpcClient("inspection") as ins:
        refused = ins.announce_draw("SJ-05", POOL, params, SCJG, inspectors=[*team, AUX], seed_method="beacon",
                                    beacon_source="2026年12月1日中国福利彩票双色球开奖号码")
        assert refused["error"]["code"] == "unqualified_inspectors" and AUX in refused["error"]["message"]
        missing = ins.announce_draw("SJ-05", POOL, params, SCJG, seed_method="beacon")
        assert missing["error"]["field"] == "beacon_source"
        assert ins.announce_draw("SJ-05", POOL, params, SCJG, inspectors=team, seed_method="beacon",
                                 beacon_source="2026年12月1日中国福利彩票双色球开奖号码")["ok"]
        suite["clock"].shift = timedelta(seconds=2)
        assert ins.perform_draw("SJ-05", SCJG)["error"]["field"] == "seed"  # the public value must be given
        assert ins.perform_draw("SJ-05", SCJG, seed="03 08 12 19 27 31 + 09")["ok"]
        record = ins.public_draw("SJ-05")["record"]
    check = dr.verify(record)
    assert check.ok and any(n["code"] == "check_beacon" for n in check.notes)
    assert {o for a in record["result"]["assignments"] for o in a["officers"]} <= set(team)
    assert len(record["result"]["targets"]) == 4  # two per grade
