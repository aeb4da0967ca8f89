"""A decision document for a real penalty case: the documents service reads the case (penalty RPC)
and its item (registry RPC), prints the tier the case used and the item's legal basis, and
refuses a document that contradicts them. Real RabbitMQ and FerretDB; facts through the ingress."""
from __future__ import annotations

import subprocess
import base64
from datetime import datetime, timedelta

import pymongo
import pytest
from nameko.standalone.rpc import ServiceRpcClient

from services.documents.service import DocumentsService
from services.gateway.service import GatewayService
from services.penalty.service import PenaltyService
from services.registry.service import RegistryService
from tests.helpers import CST, SCJG, STHJ, envelope, publish, relayed, wait_for

CODE = "330217009000"
FOOD_LAW = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}
TIERS = [("lightest", "从轻"), ("lighter", "较轻"), ("normal", "一般"), ("heavier", "较重"), ("heaviest", "严重")]
CASE = "511322-scjg-2026-0901"
FACTS = {"agency_name": "营山县市场监督管理局", "party_name": "营山县第9食品有限公司", "party_id": "91511322MA3C4X0009",
         "party_address": "营山县朗池镇", "cause": "生产经营不符合食品安全标准的食品", "filed_on": "2026年1月5日",
         "statement_summary": "当事人未提出陈述、申辩。", "facts": "当事人销售不符合食品安全标准的食品。",
         "evidence": "检验报告、现场检查笔录", "violated_provision": "《中华人民共和国食品安全法》第三十四条",
         "discretion_reason": "当事人违法情节一般，", "penalty": "罚款75000元", "performance": "十五日内缴纳罚款。",
         "reconsideration_body": "营山县人民政府", "court": "营山县人民法院", "issued_on": "2026-01-20"}


def db(config, name):
    return pymongo.MongoClient(config["MONGO_URI"], serverSelectionTimeoutMS=3000)[f"{config['DB_PREFIX']}{name}"]


def land(config, service, collection, *envelopes):
    col = db(config, service)[collection]
    for env in envelopes:
        publish(config["AMQP_URI"], [env])
        wait_for(lambda: (doc := col.find_one({"fact_ids": env["event_id"]})) and relayed(col, doc["_id"]))


def fact(type_, when, **payload):
    return envelope(type_, {"case_id": CASE, **payload}, SCJG, occurred_at=when.isoformat())


@pytest.fixture
def suite(zhifa_config, container_factory):
    for cls in (GatewayService, RegistryService, PenaltyService, DocumentsService):
        container_factory(cls).start()
    tiers = [{"tier": t, "name": n, "conditions": f"{n}情节", "amount": {"min": 50000 + i * 10000, "max": 60000 + i * 10000}}
             for i, (t, n) in enumerate(TIERS)]
    land(zhifa_config, "registry", "items",
         envelope("item.published", {"item_code": CODE, "name": "对生产经营不符合食品安全标准食品的行政处罚",
                                     "category": "penalty", "legal_basis": [FOOD_LAW], "effective_from": "2024-01-01"}),
         envelope("standard.published", {"item_code": CODE, "effective_from": "2024-03-01", "standard_no": "营市监规〔2024〕3号",
                                         "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False},
                                         "tiers": tiers}))
    t0 = datetime.now(CST).replace(microsecond=0) - timedelta(days=6)
    land(zhifa_config, "penalty", "cases",
         fact("case.filed", t0, item_code=CODE, case_no="营市监立〔2026〕9号", summary="群众举报",
              party={"type": "org", "id": "91511322MA3C4X0009", "name": "营山县第9食品有限公司"}),
         fact("case.investigated", t0 + timedelta(days=1), act_kind="evidence", officers=["o1", "o2"], text="现场检查"),
         fact("case.notified", t0 + timedelta(days=2), hearing_right=False, proposed_kinds=["fine"]),
         fact("case.decided", t0 + timedelta(days=3), decision_no="营市监罚〔2026〕9号", kinds=["fine"], fine_amount=75000,
              tier="normal", item_code=CODE, act_code="FOOD-UNSAFE", officers=["o1", "o2"],
              party={"type": "org", "id": "91511322MA3C4X0009", "name": "营山县第9食品有限公司"}))
    with ServiceRpcClient("documents") as rpc:
        yield rpc


def test_the_decision_states_the_tier_and_legal_basis_the_case_used(suite, tmp_path):
    reply = suite.render(kind="penalty_decision", subject_type="case", subject_id=CASE, dept=SCJG, facts=FACTS)
    assert reply["ok"], reply
    basis = reply["document"]["basis"]
    assert basis == {"penalty_basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（一）项", "discretion_tier": "一般",
                     "tier": "normal", "item_legal_basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（一）项",
                     "source": "case", "case_checked": True}
    pdf = tmp_path / "d.pdf"
    pdf.write_bytes(base64.b64decode(suite.get_file(doc_id=reply["document"]["doc_id"], format="pdf")["data_b64"]))
    text = "".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "适用“一般”裁量阶次" in text and "依据《中华人民共和国食品安全法》第一百二十四条第一款第（一）项的规定" in text


def test_a_document_contradicting_the_case_is_refused(suite):
    other_tier = suite.render(kind="penalty_decision", subject_type="case", subject_id=CASE, dept=SCJG,
                              facts={**FACTS, "discretion_tier": "严重"})
    assert not other_tier["ok"] and other_tier["error"]["field"] == "facts.discretion_tier"
    assert "“严重”与案件决定适用的裁量阶次“一般”不一致" in other_tier["error"]["message"]
    other_law = suite.render(kind="penalty_decision", subject_type="case", subject_id=CASE, dept=SCJG,
                             facts={**FACTS, "penalty_basis": "《中华人民共和国产品质量法》第四十九条"})
    assert other_law["error"]["field"] == "facts.penalty_basis"
    unknown = suite.render(kind="penalty_decision", subject_type="case", subject_id="511322-scjg-2026-0999", dept=SCJG,
                           facts=FACTS)
    assert unknown["error"]["code"] == "not_found"
    foreign = suite.render(kind="penalty_decision", subject_type="case", subject_id=CASE, dept=STHJ, facts=FACTS)
    assert foreign["error"]["code"] == "not_owner"
