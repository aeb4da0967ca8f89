"""Documents service on real RabbitMQ and FerretDB: numbers (文号) under concurrent requests, after a
crash between claiming a number and recording it, and a decision rendered, stored, fetched and
listed with its legal basis and discretion tier (PDF text checked with pdftotext)."""
from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pymongo
import pytest
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import worker_factory

from plugins.host import build_plugin_manager
from services.documents import domain as d
from services.documents.manifest import MANIFEST
from services.documents.service import DocumentsService
from services.documents.store import DocumentStore, ensure_indexes
from services.kernel.settings import DeptSettings
from tests.helpers import SCJG

RECEIPT = {"agency_name": "营山县市场监督管理局", "served_document": "行政处罚决定书", "recipient": "营山县某某食品有限公司",
           "service_place": "营山县朗池镇翠屏路8号", "service_method": "直接送达", "receiver_signature": "（签名）",
           "served_at": "2025年3月6日", "servers": "李明、王芳", "witness": "张强", "remarks": "无"}
DECISION = {
    "agency_name": "营山县市场监督管理局", "party_name": "营山县某某食品有限公司", "party_id": "91511322MA6XXXXXX1",
    "party_address": "营山县朗池镇翠屏路8号", "cause": "销售超过保质期的食品", "filed_on": "2025年1月10日",
    "statement_summary": "当事人在法定期限内未提出陈述、申辩。", "facts": "当事人于2024年12月销售超过保质期的食品共计120件，货值金额3600元。",
    "evidence": "现场检查笔录、询问笔录、进货单据", "violated_provision": "《中华人民共和国食品安全法》第三十四条第（十）项",
    "penalty_basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项", "discretion_tier": "一般",
    "discretion_reason": "当事人违法行为情节一般，", "penalty": "1. 没收违法所得3600元；2. 罚款50000元",
    "performance": "当事人应当自收到本决定书之日起十五日内缴纳罚款。", "reconsideration_body": "营山县人民政府",
    "court": "营山县人民法院", "issued_on": "2025-03-05",
}


@pytest.fixture
def documents(zhifa_config, container_factory):
    container_factory(DocumentsService).start()
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], tz_aware=True)
    db = client[f"{zhifa_config['DB_PREFIX']}documents"]
    with ServiceRpcClient("documents") as rpc:
        yield rpc, db
    client.close()


def test_concurrent_requests_get_consecutive_numbers_without_gaps(documents):
    rpc, db = documents
    n = 20
    calls = [rpc.render.call_async(kind="service_receipt", subject_type="case", subject_id=f"C-{i}", dept=SCJG,
                                   facts={**RECEIPT, "issued_on": "2025-03-06"}, formats=["docx"]) for i in range(n)]
    replies = [c.result() for c in calls]
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:1]
    numbers = [r["document"]["number"] for r in replies]
    assert sorted(r["document"]["seq"] for r in replies) == list(range(1, n + 1))
    assert len(set(numbers)) == n and "营市监送〔2025〕1号" in numbers and f"营市监送〔2025〕{n}号" in numbers
    assert db.counters.find_one({"_id": f"{SCJG}|service_receipt|2025"})["seq"] == n
    assert db.documents.count_documents({"status": "rendered"}) == n


def test_claims_race_on_the_real_database_and_a_retry_keeps_its_number(zhifa_config):
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], tz_aware=True)
    store = DocumentStore(client[f"{zhifa_config['DB_PREFIX']}documents"])
    ensure_indexes(store.db)
    now = datetime.now(timezone.utc)
    counter = f"{SCJG}|penalty_decision|2025"
    ids = [uuid.uuid4().hex for _ in range(40)] + ["same-document-twice"] * 6
    pool = eventlet.GreenPool(46)
    got = list(pool.imap(lambda doc_id: (doc_id, store.claim(counter, doc_id, now)), ids))
    by_doc: dict[str, set[int]] = {}
    for doc_id, seq in got:
        by_doc.setdefault(doc_id, set()).add(seq)
    assert all(len(seqs) == 1 for seqs in by_doc.values())  # a document never gets two numbers
    assert sorted(s for seqs in by_doc.values() for s in seqs) == list(range(1, 42))  # no gap, no reuse
    assert store.counter(counter)["seq"] == 41
    client.close()


def test_a_crash_after_claiming_neither_loses_nor_reuses_the_number(documents, zhifa_config):
    rpc, db = documents
    store = DocumentStore(db)
    now = datetime.now(timezone.utc)
    crashed = f"crash-{uuid.uuid4().hex[:8]}"
    first = rpc.render(kind="service_receipt", subject_type="case", subject_id="C-1", dept=SCJG,
                       facts={**RECEIPT, "issued_on": "2025-03-06"}, formats=["docx"], request_id=crashed)
    assert first["ok"] and first["document"]["seq"] == 1
    # a second request: its record and its claim are written, then the process dies
    pending = dict(db.documents.find_one({"_id": crashed}), _id="crash-second", seq=None, number=None,
                   status="numbering", files={}, created_at=now - timedelta(minutes=5))
    store.create(pending)
    assert store.claim(pending["counter"], "crash-second", now) == 2
    # meanwhile other requests go on: they never get number 2
    third = rpc.render(kind="service_receipt", subject_type="case", subject_id="C-3", dept=SCJG,
                       facts={**RECEIPT, "issued_on": "2025-03-06"}, formats=["docx"])
    assert third["document"]["seq"] == 3
    # the sweep finishes the crashed request with the number it had claimed
    host = build_plugin_manager()
    service = worker_factory(DocumentsService, db=db, plugins=host, clock=lambda: datetime.now(timezone.utc),
                             settings=DeptSettings.of(MANIFEST, host))
    assert service.resume_now() == 1
    recovered = db.documents.find_one({"_id": "crash-second"})
    assert (recovered["seq"], recovered["number"], recovered["status"]) == (2, "营市监送〔2025〕2号", "rendered")
    # a retry of the first request answers its own number again, spends nothing
    again = rpc.render(kind="service_receipt", subject_type="case", subject_id="C-1", dept=SCJG,
                       facts={**RECEIPT, "issued_on": "2025-03-06"}, formats=["docx"], request_id=crashed)
    assert again["document"]["number"] == first["document"]["number"]
    assert store.counter(pending["counter"])["seq"] == 3


def test_a_refused_request_spends_no_number(documents):
    rpc, db = documents
    facts = {k: v for k, v in RECEIPT.items() if k not in ("recipient", "witness")}
    reply = rpc.render(kind="service_receipt", subject_type="case", subject_id="C-1", dept=SCJG, facts=facts)
    assert not reply["ok"] and reply["error"]["missing"] == ["recipient", "witness"]
    assert "受送达人（recipient）" in reply["error"]["message"]
    wrong = rpc.render(kind="supervision_notice", subject_type="case", subject_id="C-1", dept=SCJG, facts={})
    assert wrong["error"]["field"] == "subject_type"
    no_tier = rpc.render(kind="penalty_decision", subject_type="case", subject_id="C-1", dept=SCJG,
                         facts={k: v for k, v in DECISION.items() if k != "discretion_tier"})
    assert not no_tier["ok"] and "裁量阶次" in no_tier["error"]["message"]
    assert db.counters.count_documents({}) == 0 and db.documents.count_documents({}) == 0


def test_decision_rendered_stored_fetched_and_listed_with_basis_and_tier(documents, tmp_path):
    rpc, db = documents
    reply = rpc.render(kind="penalty_decision", subject_type="case", subject_id="YS-2025-0007", dept=SCJG,
                       facts=DECISION, actor="scjg-clerk")
    assert reply["ok"], reply
    doc = reply["document"]
    assert doc["number"] == "营市监罚〔2025〕1号" and doc["files"]["pdf"]["size"] > 10_000 and doc["pdf_error"] is None
    stored = rpc.get_document(doc_id=doc["doc_id"])
    assert stored["basis"]["discretion_tier"] == "一般" and "第一百二十四条" in stored["basis"]["penalty_basis"]
    assert stored["facts"]["party_name"] == "营山县某某食品有限公司" and stored["fields"]["issued_on"] == "2025年3月5日"
    docx_file = rpc.get_file(doc_id=doc["doc_id"], format="docx")
    data = base64.b64decode(docx_file["data_b64"])
    assert hashlib.sha256(data).hexdigest() == docx_file["sha256"] == stored["sha256"]
    pdf_file = rpc.get_file(doc_id=doc["doc_id"], format="pdf")
    pdf = tmp_path / "decision.pdf"
    pdf.write_bytes(base64.b64decode(pdf_file["data_b64"]))
    assert pdf_file["filename"] == "行政处罚决定书-营市监罚〔2025〕1号.pdf" and pdf_file["content_type"] == "application/pdf"
    text = "".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "行政处罚决定书" in text and "营市监罚〔2025〕1号" in text and "适用“一般”裁量阶次" in text
    assert "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项" in text
    listed = rpc.list_documents(subject_type="case", subject_id="YS-2025-0007")
    assert listed["total"] == 1 and listed["items"][0]["number"] == "营市监罚〔2025〕1号"
    assert "facts" not in listed["items"][0]
    assert rpc.list_documents(dept="511322-sthj")["total"] == 0
    assert rpc.get_file(doc_id="no-such-document", format="pdf") is None
    kinds = {k["kind"]: k for k in rpc.document_kinds(dept=SCJG)["items"]}
    assert "discretion_tier" in kinds["penalty_decision"]["fields"] and kinds["penalty_decision"]["template"] == "plugin:builtin.documents"


def test_a_county_template_replaces_the_builtin_without_code(documents, tmp_path):
    from nameko import config as nameko_config

    from services.documents.layout import build_template, to_bytes

    rpc, _ = documents
    county = tmp_path / "templates"
    (county / SCJG).mkdir(parents=True)
    body = "{agency_name}\n送达回证\n{doc_number}\n\n本县格式：受送达人{recipient}\n"
    (county / SCJG / "service_receipt.docx").write_bytes(to_bytes(build_template("送达回证", body)))
    with nameko_config.patch({"DOCUMENTS_TEMPLATE_DIR": str(county)}, clear=False):
        # the running service reads the directory on every render; RPC into it from this process's config
        service_reply = rpc.render(kind="service_receipt", subject_type="case", subject_id="C-9", dept=SCJG,
                                   facts={"agency_name": "营山县市场监督管理局", "recipient": "某公司"}, formats=["docx"])
    assert service_reply["ok"], service_reply
    assert service_reply["document"]["template"]["source"] == "county"


def test_a_department_user_renders_and_downloads_the_decision_through_the_api(documents, zhifa_config,
                                                                                container_factory, tmp_path):
    from tests.api_kit import start_api

    api = start_api(zhifa_config, container_factory)
    made = api.post("/api/v1/documents", {"kind": "penalty_decision", "subject_type": "case",
                                          "subject_id": "YS-2025-0008", "facts": DECISION}, as_="scjg")
    assert made.status_code == 200, made.text
    doc = made.json()["document"]
    assert doc["number"] == "营市监罚〔2025〕1号" and doc["dept"] == SCJG
    pdf = api.get(f"/api/v1/documents/{doc['doc_id']}/download/pdf", as_="scjg")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and hashlib.sha256(pdf.content).hexdigest() == pdf.headers["X-Content-SHA256"]
    assert "filename*=UTF-8''" in pdf.headers["Content-Disposition"]
    (tmp_path / "d.pdf").write_bytes(pdf.content)
    text = "".join(subprocess.run(["pdftotext", str(tmp_path / "d.pdf"), "-"], capture_output=True,
                                  check=True).stdout.decode().split())
    assert "营市监罚〔2025〕1号" in text and "营山县某某食品有限公司" in text
    word = api.get(f"/api/v1/documents/{doc['doc_id']}/download/docx", as_="sup")
    assert word.status_code == 200 and word.content.startswith(b"PK")
    assert api.get(f"/api/v1/documents/{doc['doc_id']}/download/pdf", as_="sthj").status_code == 404
    assert api.get(f"/api/v1/documents/{doc['doc_id']}/download/pdf", as_="aud").status_code == 403
    assert api.get(f"/api/v1/documents/{doc['doc_id']}/download/odt", as_="scjg").status_code == 400
    listed = api.get("/api/v1/documents", as_="scjg", subject_type="case", subject_id="YS-2025-0008").json()
    assert listed["total"] == 1 and listed["items"][0]["number"] == "营市监罚〔2025〕1号"
    bad = api.post("/api/v1/documents", {"kind": "penalty_decision", "subject_type": "case", "subject_id": "YS-1",
                                         "facts": {"party_name": "某"}}, as_="scjg")
    assert bad.status_code == 400 and "必须载明处罚依据" in bad.json()["error"]["message"]


def test_the_demo_renders_one_decision_per_department_once(documents, zhifa_config):
    from services.documents.demo import render_demo_decisions
    from services.simulator.generator import county_config, simulate

    rpc, db = documents
    sim = simulate(county_config("demo", seed=20250101, year=2025))
    first = render_demo_decisions(sim, zhifa_config["AMQP_URI"], wait_seconds=5)
    assert len(first) == 2 and any("营市监罚〔2025〕1号" in n for n in first) and any("营环罚〔2025〕1号" in n for n in first)
    assert render_demo_decisions(sim, zhifa_config["AMQP_URI"], wait_seconds=5) == first  # loading again: same documents
    assert db.documents.count_documents({"status": "rendered", "files.pdf": {"$exists": True}}) == 2
