"""Report documents (月报 / 季报) on real RabbitMQ and FerretDB, through the HTTP API.

Inspections and handovers reported through the ingress are counted by the inspection and handover
services per month; the coordination service's report data reads those counters (with the trend
against the previous month); the documents service renders the report as DOCX and PDF with a 文号.
A department renders and downloads only its own monthly report; the county's monthly and the
quarterly report are the justice bureau's; an auditor downloads reports but nothing else.
"""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

import pymongo
import pytest
import requests

from services.api import accounts
from services.coordination.service import CoordinationService
from services.documents.service import DocumentsService
from services.gateway.service import GatewayService
from services.handover.service import HandoverService
from services.inspection.service import InspectionService
from services.kernel.clock import utcnow
from tests.api_kit import start_api
from tests.helpers import CST, SCJG, STHJ, envelope, publish, wait_for
from tests.integration.test_documents import RECEIPT

SFJ = "511322-sfj"
GA, JCY = "511322-ga", "511322-jcy"
AGENCY = "营山县市场监督管理局"


@pytest.fixture
def county(zhifa_config, container_factory):
    for cls in (GatewayService, InspectionService, HandoverService, CoordinationService, DocumentsService):
        container_factory(cls).start()
    # a render reads the figures and runs LibreOffice: on a loaded test machine more than the API's default 15 s
    api = start_api(zhifa_config, container_factory, API_RPC_TIMEOUT_SECONDS=60)
    return {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config, "api": api}


def inspection(inspection_id: str, started: datetime, dept: str = SCJG, **kw) -> dict:
    return envelope("inspection.registered", {
        "inspection_id": inspection_id, "target": {"id": f"91511322000{inspection_id[-5:]}", "name": "营山县某食品商行"},
        "kind": "routine", "agency_id": f"A{dept}", "officers": [f"{dept}-0201", f"{dept}-0202"],
        "item_codes": ["J51132200100"], "started_at": started.isoformat(),
        "ended_at": (started + timedelta(hours=1)).isoformat(),
        "approval": {"approved_by": "王建国", "approved_at": (started - timedelta(hours=3)).isoformat()}, **kw}, dept)


def handover_steps(t0: datetime, hid: str = "511322-scjg-YS-2026-101") -> list[dict]:
    def step(type_, when, **payload):
        return envelope(f"handover.{type_}", {"handover_id": hid, **payload}, SCJG, occurred_at=when.isoformat())

    return [step("suspicion_raised", t0, case_id="511322-scjg-2026-0101", suspected_crime="涉嫌销售伪劣产品罪",
                 officers=["51132200123", "51132200456"], report_ref="营市监移报〔2026〕9号"),
            step("head_decided", t0 + timedelta(minutes=20), approved=True, head="王建国"),
            step("transferred", t0 + timedelta(minutes=40), police_dept=GA, police_unit="营山县公安局经侦大队",
                 documents=["transfer_letter", "investigation_report", "exhibit_list"], copy_to=JCY)]


def pdf_text(data: bytes, tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
    return "".join(out.split())


def render(api, body: dict, as_: str, **params):
    """POST /api/v1/documents with a client timeout above the API's (a loaded machine converts slowly)."""
    return requests.post(f"{api.base}/api/v1/documents", params=params, headers=api.headers(as_),
                         json={"subject_type": "report", "facts": {}, **body}, timeout=90)


def test_monthly_and_quarterly_reports_count_inspections_and_handovers_and_render_per_role(county, tmp_path):
    api = county["api"]
    now = datetime.now(CST).replace(microsecond=0)
    start = now.replace(day=1, hour=0, minute=0, second=0)
    if now - start < timedelta(hours=2):
        pytest.skip("the first two hours of a month: nothing of this month can have happened yet")
    month, last = start.strftime("%Y-%m"), (start - timedelta(days=1)).strftime("%Y-%m")
    t0 = start + (now - start) / 2
    # this month: three inspections by SCJG, one of them joint with STHJ; last month: one
    facts = [inspection("INS-R-00001", t0), inspection("INS-R-00002", t0 + timedelta(minutes=5)),
             inspection("INS-R-00003", t0 + timedelta(minutes=10), joint_depts=[STHJ]),
             inspection("INS-R-00004", start - timedelta(days=3))]
    publish(county["amqp"], facts)
    handovers = pymongo.MongoClient(county["config"]["MONGO_URI"])[f"{county['config']['DB_PREFIX']}handover"].handovers
    for env in handover_steps(t0):             # one by one: each step a status of its own
        publish(county["amqp"], [env])
        wait_for(lambda: handovers.find_one({"fact_ids": env["event_id"]}), timeout=15)

    def report():
        r = api.get("/api/v1/reports/monthly", as_="scjg", month=month)
        return r.json() if r.status_code == 200 else None

    # the figures are counted per inspection, one figures document after another (department, county,
    # month), and the facts of one batch concurrently: wait for every figure asserted below, not one
    data = wait_for(lambda: (r := report()) and r["inspections"].get("inspections") == 3
                    and r["handovers"].get("transferred") == 1
                    and r.get("trend", {}).get("items", {}).get("inspections", {}).get("before") == 1 and r, timeout=30)
    assert data["inspections"] == {"inspections": 3, "joint": 1, "drawn": 0, "remote": 0, "joint_rate": 0.3333}
    assert data["handovers"]["by_state"] == {"approved": 1, "raised": 1, "transferred": 1}
    assert data["trend"]["previous"] == last
    assert data["trend"]["items"]["inspections"] == {"now": 3, "before": 1, "change": 2}
    assert data["penalty_cases"] == {"unavailable": True}          # the penalty service is not running here
    county_data = wait_for(lambda: (j := api.get("/api/v1/reports/monthly", as_="sup", month=month).json())
                           and j.get("county", {}).get("inspections", {}).get("inspections") == 3 and j, timeout=30)
    rows = {r["dept"]: r for r in county_data["departments"]}
    assert rows[STHJ]["inspections"]["inspections"] == 1 and county_data["county"]["inspections"]["inspections"] == 3

    # the kinds a department may make: its monthly report (its figures come from the system), no quarterly report
    kinds = {k["kind"]: k for k in api.get("/api/v1/document-kinds", as_="scjg", dept=SCJG).json()["items"]}
    assert kinds["monthly_report"]["fields"] == ["agency_name"] and kinds["monthly_report"]["subjects"] == ["report"]
    assert "quarterly_report" not in kinds
    assert "quarterly_report" in {k["kind"] for k in api.get("/api/v1/document-kinds", dept=SFJ).json()["items"]}

    # a department renders its own monthly report (DOCX + PDF, numbered in its own sequence)
    mine = render(api, {"kind": "monthly_report", "subject_id": month, "facts": {"agency_name": AGENCY}}, "scjg")
    assert mine.status_code == 200, mine.text
    doc = mine.json()["document"]
    assert doc["dept"] == SCJG and doc["subject_id"] == month and doc["number"].startswith("营市监月报〔")
    assert set(doc["files"]) == {"docx", "pdf"} and not doc.get("pdf_error")
    pdf = api.get(f"/api/v1/documents/{doc['doc_id']}/download/pdf", as_="scjg")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content, tmp_path, "monthly.pdf")
    y, m = month.split("-")
    assert f"{y}年{int(m)}月行政执法工作月报" in text and AGENCY in text and doc["number"] in text
    assert "开展行政检查3次，其中联合检查1次，联合检查率33.3%" in text and "移送涉嫌犯罪案件1件" in text
    assert api.get(f"/api/v1/documents/{doc['doc_id']}/download/docx", as_="scjg").status_code == 200
    listed = api.get("/api/v1/documents", as_="scjg", subject_type="report", subject_id=month).json()
    assert [d["doc_id"] for d in listed["items"]] == [doc["doc_id"]]

    # ... but not another department's, nor the county's or the quarterly report
    other = render(api, {"kind": "monthly_report", "subject_id": month}, "scjg", dept=STHJ)
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden_dept"
    quarter = f"{y}-Q{(int(m) - 1) // 3 + 1}"
    refused = render(api, {"kind": "quarterly_report", "subject_id": quarter}, "scjg")
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "dept"
    assert api.get(f"/api/v1/documents/{doc['doc_id']}/download/pdf", as_="sthj").status_code == 404
    bad = render(api, {"kind": "monthly_report", "subject_id": f"{y}-13"}, "scjg")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "subject_id"
    computed = render(api, {"kind": "monthly_report", "subject_id": month, "facts": {"rows": "伪造的数字"}}, "scjg")
    assert computed.status_code == 400 and computed.json()["error"]["field"] == "facts.rows"

    # the justice bureau renders the county's monthly and quarterly reports; the auditor downloads them
    for kind, period in (("monthly_report", month), ("quarterly_report", quarter)):
        made = render(api, {"kind": kind, "subject_id": period, "facts": {"agency_name": "营山县司法局"}}, "sup", dept=SFJ)
        assert made.status_code == 200, made.text
        county_doc = made.json()["document"]
        assert county_doc["dept"] == SFJ and county_doc["number"].startswith("营司")
        got = api.get(f"/api/v1/documents/{county_doc['doc_id']}/download/pdf", as_="aud")
        assert got.status_code == 200
        text = pdf_text(got.content, tmp_path, f"{kind}.pdf")
        assert "全县行政执法工作" in text and "营山县司法局" in text and "合计（全县）" in text
        assert api.get(f"/api/v1/documents/{county_doc['doc_id']}/download/pdf", as_="scjg").status_code == 404
    assert render(api, {"kind": "quarterly_report", "subject_id": quarter}, "aud", dept=SFJ).status_code == 403
    # a department user of the justice bureau itself is no supervisor: not the county's reports either
    api.tokens["sfj"] = accounts.create_user(api.db, "sfj", "dept_user", utcnow(), dept=SFJ, kind="machine")["token"]
    clerk = render(api, {"kind": "monthly_report", "subject_id": month}, "sfj")
    assert clerk.status_code == 403 and clerk.json()["error"]["code"] == "forbidden", clerk.text

    # an auditor downloads reports only, never a document about a party
    receipt = render(api, {"kind": "service_receipt", "subject_type": "case", "subject_id": "511322-scjg-2026-0101",
                           "facts": RECEIPT}, "scjg")
    assert receipt.status_code == 200, receipt.text
    denied = api.get(f"/api/v1/documents/{receipt.json()['document']['doc_id']}/download/pdf", as_="aud")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden_role"

