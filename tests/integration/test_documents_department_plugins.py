"""The documents service on real RabbitMQ and FerretDB with the 卫健 and 交通 plugin distributions
(installed into .venv by bootstrap): their kinds are offered with the plugin's template, numbered
with the plugin's 文号 codes from the department's own sequences, and rendered to a PDF whose Chinese
text pdftotext finds."""
from __future__ import annotations

import base64
import re
import subprocess

from tests.integration.test_documents import RECEIPT, documents  # noqa: F401  (the documents service fixture)
from tests.unit.test_department_plugins import FIELDS

WJJ, JTJ, GLJ = "511322-wjj", "511322-jtj", "511322-glj"


def pdf_text(rpc, doc_id: str, tmp_path) -> str:
    got = rpc.get_file(doc_id=doc_id, format="pdf")
    path = tmp_path / f"{doc_id}.pdf"
    path.write_bytes(base64.b64decode(got["data_b64"]))
    return re.sub(r"\s+", "", subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode())


def render(rpc, kind, dept, subject_id, facts):
    reply = rpc.render(kind=kind, subject_type="inspection", subject_id=subject_id, dept=dept, facts=facts)
    assert reply["ok"], reply
    return reply["document"]


def test_plugin_kinds_are_offered_only_to_their_departments(documents):
    rpc, _ = documents
    kinds = {d: {k["kind"]: k["template"] for k in rpc.document_kinds(dept=d)["items"]} for d in (WJJ, JTJ, "511322-scjg")}
    assert kinds[WJJ]["health_supervision_opinion"] == "plugin:wjj" and kinds[JTJ]["correction_order"] == "plugin:jtj"
    assert "plugin:wjj" not in kinds[JTJ].values() and "plugin:jtj" not in kinds[WJJ].values()
    assert not {"plugin:wjj", "plugin:jtj"} & set(kinds["511322-scjg"].values())


def test_health_opinion_and_receipt_numbered_with_the_health_codes(documents, tmp_path):
    rpc, db = documents
    facts = {**FIELDS["health_supervision_opinion"], "issued_on": "2025-06-03"}
    first = render(rpc, "health_supervision_opinion", WJJ, "WJJ-JC-2025-001", facts)
    second = render(rpc, "health_supervision_opinion", WJJ, "WJJ-JC-2025-002", facts)
    receipt = render(rpc, "service_receipt", WJJ, "WJJ-JC-2025-001",
                     {**RECEIPT, "agency_name": "营山县卫生健康局", "served_document": "卫生监督意见书", "issued_on": "2025-06-03"})
    assert (first["number"], second["number"], receipt["number"]) == ("营卫监意〔2025〕1号", "营卫监意〔2025〕2号",
                                                                      "营卫医送〔2025〕1号")
    assert db.counters.find_one({"_id": f"{WJJ}|health_supervision_opinion|2025"})["seq"] == 2
    text = pdf_text(rpc, first["doc_id"], tmp_path)
    assert "卫生监督意见书" in text and "营卫监意〔2025〕1号" in text and "营山县悦容美发店" in text
    assert "顾客用毛巾未按规定清洗消毒" in text


def test_transport_correction_order_numbered_by_road_or_transport_department(documents, tmp_path):
    rpc, _ = documents
    facts = {**FIELDS["correction_order"], "issued_on": "2025-05-08"}
    road = render(rpc, "correction_order", GLJ, "GLJ-ZC-2025-001", {**facts, "agency_name": "营山县公路事务中心"})
    transport = render(rpc, "correction_order", JTJ, "JTJ-JC-2025-001", facts)
    assert (road["number"], transport["number"]) == ("营交路改〔2025〕1号", "营交运改〔2025〕1号")
    text = pdf_text(rpc, transport["doc_id"], tmp_path)
    assert "责令改正违法行为通知书" in text and "营交运改〔2025〕1号" in text and "营山县顺达货运有限公司" in text


def test_health_documents_are_numbered_by_the_case_category_each_in_its_own_series(documents):
    rpc, db = documents
    facts = {**RECEIPT, "agency_name": "营山县卫生健康局", "served_document": "行政处罚决定书", "issued_on": "2025-07-01"}

    def receipt(case_id, **extra):
        reply = rpc.render(kind="service_receipt", subject_type="case", subject_id=case_id, dept=WJJ,
                           facts={**facts, **extra}, formats=["docx"])
        assert reply["ok"], reply
        return reply["document"]

    usual = receipt("511322-wjj-2025-0101")
    public_place = [receipt(f"511322-wjj-2025-020{i}", case_category="公") for i in (1, 2)]
    usual_again = receipt("511322-wjj-2025-0103", case_category="医")
    assert [d["number"] for d in (usual, *public_place, usual_again)] == [
        "营卫医送〔2025〕1号", "营卫公送〔2025〕1号", "营卫公送〔2025〕2号", "营卫医送〔2025〕2号"]
    # the usual category keeps the department's sequence as before; the other one counts on its own
    assert db.counters.find_one({"_id": f"{WJJ}|service_receipt|2025"})["seq"] == 2
    assert db.counters.find_one({"_id": f"{WJJ}|service_receipt|2025|营卫公送"})["seq"] == 2
