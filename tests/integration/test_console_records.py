"""The console's record pages (双随机 inspection plans and draws, 行刑衔接 handovers, complaints, disputes,
normative documents, devices) in a real browser: Debian's chromium driven by Playwright against real
servers started in-process (tests/console_kit.py). The data is landed through the services themselves: a
plan, a pool, a draw announced and performed through the API, an inspection record, handovers and
complaints in two departments, a dispute, a normative document and a device. Every new page is opened as
supervisor, department user and auditor (no error alert, no console error, no serious axe-core
violation); a draw is verified in the browser; a department user cannot open another department's
handover or complaint by URL. Screenshots of the main pages go to docs/screenshots/.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import eventlet
import pymongo
import pytest

from services.common.chinatime import CST
from tests.console_kit import E2E, OFF1, OFF2, SHOTS, county, drive, people  # noqa: F401 (fixtures)
from tests.helpers import SCJG, STHJ, case_list_settled, envelope, publish, relayed, wait_for

SFJ = "511322-sfj"
GA, JCY = "511322-ga", "511322-jcy"
POOL = "511322-scjg-MLK-food"
PLAN = "511322-scjg-JH-2026-01"
DRAW = "511322-scjg-SJ-2026-01"
ENTS = [f"9151132200000{n:05d}" for n in range(8)]
HANDOVER, STHJ_HANDOVER = "511322-scjg-YS-2026-003", "511322-sthj-YS-2026-001"
RECORDS = E2E / "records.py"


def col(kit, service: str, collection: str):
    client = pymongo.MongoClient(kit.config["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{kit.config['DB_PREFIX']}{service}"][collection]


def land(kit, service: str, collection: str, *envelopes):
    """Publish facts through the ingress one at a time, each stored and relayed before the next."""
    c = col(kit, service, collection)
    for env in envelopes:
        publish(kit.config["AMQP_URI"], [env])
        wait_for(lambda: (doc := c.find_one({"fact_ids": env["event_id"]})) and relayed(c, doc["_id"]), timeout=15)
    if service == "penalty":  # (and the case list caught up: it lags the cases by CASE_LIST_LAG_MS)
        wait_for(lambda: case_list_settled(c), timeout=15)


def ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()


def handover_steps(hid: str, dept: str, t0: datetime, case_id: str) -> list[dict]:
    def step(type_, by, when, **payload):
        return envelope(f"handover.{type_}", {"handover_id": hid, **payload}, by, occurred_at=when.isoformat())
    return [
        step("suspicion_raised", dept, t0, case_id=case_id, suspected_crime="涉嫌销售伪劣产品罪",
             officers=[OFF1, OFF2], report_ref="营市监移报〔2026〕3号"),
        step("head_decided", dept, t0 + timedelta(hours=1), approved=True, head="王建国"),
        step("transferred", dept, t0 + timedelta(hours=2), police_dept=GA, police_unit="营山县公安局经侦大队",
             documents=["transfer_letter", "investigation_report", "exhibit_list"], copy_to=JCY),
    ]


@pytest.fixture
def records(people, zhifa_config):
    """The county of test_console plus what the record pages show, landed through the services."""
    kit = people
    kit.config = zhifa_config
    now = datetime.now(CST).replace(microsecond=0)
    # 双随机: a pool, a plan, a draw announced and performed through the API, an inspection from the draw
    land(kit, "inspection", "pools", envelope("inspection_pool.members_listed", {
        "pool_id": POOL, "name": "营山县食品经营企业名录库",
        "members": [{"id": e, "name": f"营山县第{n}食品商行", "grade": "AB"[n % 2], "region": "511322"}
                    for n, e in enumerate(ENTS)]}))
    start = now.date() + timedelta(days=10)
    land(kit, "inspection", "plans", envelope("inspection_plan.registered", {
        "plan_id": PLAN, "kind": "monthly", "title": "食品经营企业月度双随机抽查计划", "item_codes": ["J51132200100"],
        "period_from": start.isoformat(), "period_to": (start + timedelta(days=20)).isoformat(),
        "targets": [{"id": ENTS[0], "name": "营山县第0食品商行"}]}))
    officers = col(kit, "inspection", "officers")
    wait_for(lambda: officers.count_documents({}) >= 3, timeout=20)
    ok(kit.post(f"/api/v1/draws/{DRAW}/announce", {"pool_id": POOL, "plan_id": PLAN, "params": {
        "ratios": {"A": 0.5, "B": 0.25}, "inspectors_per_target": 2}}, as_="scjg"))
    eventlet.sleep(1.1)   # performed strictly after announced (whole seconds)
    ok(kit.post(f"/api/v1/draws/{DRAW}/perform", {}, as_="scjg"))
    drawn = ok(kit.get(f"/api/v1/public/draws/{DRAW}", as_=None))["record"]["result"]["assignments"][0]
    name = f"营山县第{ENTS.index(drawn['target_id'])}食品商行"
    started = now - timedelta(days=1)
    land(kit, "inspection", "enterprises", envelope("inspection.registered", {
        "inspection_id": "JC-2026-001", "target": {"id": drawn["target_id"], "name": name},
        "kind": "routine", "agency_id": f"A{SCJG}", "officers": drawn["officers"], "item_codes": ["J51132200100"],
        "started_at": started.isoformat(), "ended_at": (started + timedelta(hours=1)).isoformat(), "draw_id": DRAW,
        "approval": {"approved_by": "王建国", "approved_at": (started - timedelta(hours=3)).isoformat()}}))
    # 行刑衔接: one handover of SCJG (received by the police), one of STHJ
    t0 = now - timedelta(hours=30)
    land(kit, "handover", "handovers", *handover_steps(HANDOVER, SCJG, t0, "511322-scjg-2026-0002"),
         envelope("handover.received", {"handover_id": HANDOVER, "receipt_no": "营公经回〔2026〕17号"}, GA,
                  occurred_at=(t0 + timedelta(hours=3)).isoformat()))
    land(kit, "handover", "handovers", *handover_steps(STHJ_HANDOVER, STHJ, t0, "511322-sthj-2026-0301")[:1])
    # 投诉举报: one routed to SCJG and acknowledged, one routed to STHJ
    complaints = {}
    for dept, summary in ((SCJG, "某超市销售过期食品"), (STHJ, "某化工厂夜间排放异味")):
        cid = ok(kit.post("/api/v1/complaints", {"channel": "hotline_12345", "summary": summary,
                                                 "complainant_name": "王某", "complainant_phone": "13800000000",
                                                 "party_id": "91511322MA0000001X"}, as_="sup", dept=SFJ))["complaint_id"]
        ok(kit.post(f"/api/v1/complaints/{cid}/route", {"target": dept}, as_="sup", dept=SFJ))
        complaints[dept] = cid
    ok(kit.post(f"/api/v1/complaints/{complaints[SCJG]}/acknowledge", {}, as_="scjg"))
    ok(kit.post("/api/v1/complaints", {"channel": "letter", "summary": "该超市再次销售过期食品",
                                       "party_id": "91511322MA0000001X"}, as_="sup", dept=SFJ))
    # the transfer letter (移送书) of the SCJG handover, made by the documents service
    # (retried with the same request id on a busy machine's 503: a retry does not take a second number)
    letter = {"facts": {"agency_name": "营山县市场监督管理局", "party_name": "营山县某酒业有限公司", "cause": "销售掺杂掺假白酒",
                        "other_materials": "进货单据复印件"}, "request_id": "letter-console-1"}
    wait_for(lambda: kit.post(f"/api/v1/handovers/{HANDOVER}/letter", letter, as_="scjg").status_code == 200, timeout=60,
             interval=2)
    # 管辖争议, 规范性文件, 电子技术监控设备
    dispute = ok(kit.post("/api/v1/disputes", {"matter": "农贸市场内无证经营食品的查处", "parties": [STHJ],
                                               "filed_on": now.date().isoformat()}, as_="scjg"))["dispute_id"]
    ok(kit.post("/api/v1/normative-documents", {"title": "行政处罚裁量基准实施办法", "doc_no": "营市监规〔2026〕1号",
                                                "issued_on": now.date().isoformat()}, as_="scjg"))
    ok(kit.post("/api/v1/devices/511322-scjg-cam-0001/register", {"location": "城南农贸市场", "purpose": "占道经营抓拍"},
                as_="scjg"))
    wait_for(lambda: kit.get("/api/v1/inspections", as_="sup", dept=SCJG).json()["total"] == 1, timeout=20)
    wait_for(lambda: kit.get("/api/v1/handovers", as_="sup").json()["total"] == 2, timeout=20)
    wait_for(lambda: kit.get("/api/v1/documents", as_="scjg", subject_type="handover", subject_id=HANDOVER).json()["total"],
             timeout=20)
    public = ok(kit.get(f"/api/v1/public/draws/{DRAW}", as_=None))
    return {"kit": kit, "complaints": complaints, "dispute": dispute, "public": public}


# the record pages' menu entries, in this order, for every role that reads them
ENTRIES = ["行政检查", "检查计划", "行刑衔接", "投诉举报", "管辖争议", "规范性文件", "监控设备"]
# page name -> (console path, the title its <h1> starts with)
def pages(r) -> dict:
    return {
        "inspections": ("/inspections", "行政检查"), "plans": ("/inspection-plans", "检查计划"),
        "plan": (f"/inspection-plans/{PLAN}", "检查计划 食品经营企业月度双随机抽查计划"),
        "draw": (f"/draws/{DRAW}", f"双随机抽取 {DRAW}"), "handovers": ("/handovers", "行刑衔接"),
        "handover": (f"/handovers/{HANDOVER}", f"移送案件 {HANDOVER}"), "complaints": ("/complaints", "投诉举报"),
        "complaint": (f"/complaints/{r['complaints'][SCJG]}", f"投诉举报 {r['complaints'][SCJG]}"),
        "disputes": ("/disputes", "管辖争议"), "dispute": (f"/disputes/{r['dispute']}", f"管辖争议 {r['dispute']}"),
        "normative": ("/normative-documents", "规范性文件备案"), "devices": ("/devices", "监控设备"),
    }


SHOTS_OF = {"inspections": "inspections", "plan": "inspection-plan", "handover": "handover", "complaints": "complaints",
            "complaint": "complaint"}


def test_record_pages_for_every_role_a_draw_verified_in_the_browser_and_departments_kept_apart(records):
    kit, r = records["kit"], records
    want = pages(r)
    drawn = {t["id"] for t in r["public"]["record"]["result"]["targets"]}
    swap_in = next(e for e in ENTS if e not in drawn)
    seen = drive(kit, "records", driver=RECORDS, timeout=900, users=["web-sup", "web-scjg", "web-aud"],
                 supervisor="web-sup", dept_user="web-scjg", pages={k: v[0] for k, v in want.items()}, shots_of=SHOTS_OF,
                 draw=DRAW, swap_in=swap_in,
                 others={"handover": f"/handovers/{STHJ_HANDOVER}", "complaint": f"/complaints/{r['complaints'][STHJ]}"})
    problems = []
    for user in ("web-sup", "web-scjg", "web-aud"):
        got = seen[user]
        at = got["menu"].index(ENTRIES[0]) if ENTRIES[0] in got["menu"] else 0
        assert got["menu"][at:at + len(ENTRIES)] == ENTRIES, (user, got["menu"])
        for name, (path, title) in want.items():
            page = got["pages"][name]
            if not page["title"].startswith(title) or page["alerts"] or page["axe"]:
                problems.append((user, name, {k: v for k, v in page.items() if k != "text"}))
        errors = got["errors"] if user != "web-scjg" else [e for e in got["errors"] if "404" not in e]
        if errors:
            problems.append((user, "console", errors))
    assert problems == [], json.dumps(problems, ensure_ascii=False, indent=1)

    sup = seen["web-sup"]["pages"]
    # the plan with its draw and pool, the draw with who was drawn and who inspects them
    assert DRAW in sup["plan"]["text"] and "营山县食品经营企业名录库" in sup["plan"]["text"], sup["plan"]["text"]
    names = {t["id"]: t["name"] for t in r["public"]["record"]["announcement"]["targets"]}
    assert all(names[t] in sup["draw"]["text"] for t in drawn) and "李明" in sup["draw"]["text"]
    # the inspections with their figures: joint-inspection rate against its target, frequency per enterprise
    assert "联合检查率（目标 80%）" in sup["inspections"]["text"] and "JC-2026-001" in sup["inspections"]["text"]
    assert "1 次" in sup["inspections"]["text"]
    # the handover: 310号令 steps with deadlines met, the police's receipt, the transfer letter to download
    for text in ("机关负责人作出是否批准移送的决定", "向公安机关移送", "按期完成", "公安机关签收回执", "办理中",
                 "涉嫌犯罪案件移送书", "PDF"):
        assert text in sup["handover"]["text"], (text, sup["handover"]["text"])
    # the complaint: its deadlines and steps; the supervisor sees the complainant masked, the department in full
    assert "受理" in sup["complaint"]["text"] and "答复" in sup["complaint"]["text"] and "按期完成" in sup["complaint"]["text"]
    assert "138******00" in sup["complaint"]["text"] and "13800000000" in seen["web-scjg"]["pages"]["complaint"]["text"]
    assert "重复投诉信号" in sup["complaints"]["text"] and "暂无重复投诉" not in sup["complaints"]["text"]
    assert "行政处罚裁量基准实施办法" in sup["normative"]["text"] and "城南农贸市场" in sup["devices"]["text"]

    # the draw verified in the browser from the published record; a tampered copy refused
    assert "复核通过" in seen["web-sup"]["verified"] and "✗" not in seen["web-sup"]["verified"], seen["web-sup"]["verified"]
    assert "复核不通过" in seen["web-sup"]["tampered"] and "result_mismatch" in seen["web-sup"]["tampered"]
    assert f"#/draws/{DRAW}" in seen["web-sup"]["public_links"]          # the public draw page links to the record
    assert f"#/public/draws/{DRAW}" in seen["public_lookup_links"]        # and the public page to the draw page
    public = seen["public"]
    assert public["title"].startswith("随机抽取公示") and "复核通过" in public["verified"], public
    assert public["axe"] == [] and public["errors"] == [] and public["alerts"] == []
    shared = seen["shared_link"]
    assert shared["title"].startswith("随机抽取公示") and shared["alerts"] == [] and shared["errors"] == [], shared

    # a department user: its own records, not another department's by URL (the API answers 404)
    dept = seen["web-scjg"]
    assert HANDOVER in dept["pages"]["handovers"]["text"] and STHJ_HANDOVER not in dept["pages"]["handovers"]["text"]
    assert r["complaints"][STHJ] not in dept["pages"]["complaints"]["text"]
    for name in ("handover", "complaint"):
        other = dept["others"][name]
        assert other["alerts"] and "未找到" in other["alerts"][0], other
        assert "某化工厂" not in other["text"] and STHJ_HANDOVER not in other["title"], other
    assert len([e for e in dept["errors"] if "404" in e]) == 2, dept["errors"]
    for name in SHOTS_OF.values():
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    assert (SHOTS / "draw-verified.png").stat().st_size > 10_000
