"""Supervision documents addressed to departments (受文部门, DOC-ADDRESSEE) on real RabbitMQ and FerretDB:
the justice bureau's notice for a supervision case names the supervised department it goes to (checked
against the case the coordination service keeps); that department lists, reads and downloads it through
the HTTP API, another department does not see it."""
from __future__ import annotations

import hashlib

import pytest
from nameko.standalone.rpc import ServiceRpcClient

from services.coordination.service import CoordinationService
from services.documents.service import DocumentsService
from tests.api_kit import start_api
from tests.helpers import SCJG, STHJ

SFJ, CGJ = "511322-sfj", "511322-cgj"
NOTICE = {"agency_name": "营山县司法局", "dept_name": "营山县市场监督管理局", "matter": "办理食品案件",
          "problems": "调查取证仅一名执法人员", "rectify_days": "30", "contact_person": "王监督",
          "contact_phone": "0817-1234567", "issued_on": "2026-03-02"}


@pytest.fixture
def bureau(zhifa_config, container_factory):
    for cls in (CoordinationService, DocumentsService):
        container_factory(cls).start()
    kit = start_api(zhifa_config, container_factory)
    with ServiceRpcClient("coordination") as coordination, ServiceRpcClient("documents") as documents:
        opened = coordination.open_supervision_case(kind="special", origin="initiative", depts=[SCJG, STHJ],
                                                    title="食品案件办理情况专项监督", dept=SFJ, actor="sup",
                                                    checklist=["调查取证执法人员不少于两人"])
        assert opened["ok"], opened
        yield kit, documents, opened["case_id"]


def render(documents, case_id, kind="supervision_notice", **kw):
    return documents.render(kind=kind, subject_type="supervision", subject_id=case_id, dept=kw.pop("dept", SFJ),
                            facts=kw.pop("facts", NOTICE), formats=["docx"], **kw)


def test_a_department_lists_reads_and_downloads_the_documents_addressed_to_it_and_only_those(bureau):
    kit, documents, case_id = bureau
    notice = render(documents, case_id, addressee=SCJG)
    assert notice["ok"], notice
    doc = notice["document"]
    assert doc["addressees"] == [SCJG] and doc["dept"] == SFJ and doc["number"].startswith("营司监")
    params = {"subject_type": "supervision", "subject_id": case_id}
    # the addressee: listed (its dept filter is forced to its own), readable, downloadable, the download audited
    mine = kit.get("/api/v1/documents", as_="scjg", **params).json()
    assert [d["doc_id"] for d in mine["items"]] == [doc["doc_id"]] and mine["total"] == 1, mine
    assert kit.get(f"/api/v1/documents/{doc['doc_id']}", as_="scjg").status_code == 200
    got = kit.get(f"/api/v1/documents/{doc['doc_id']}/download/docx", as_="scjg")
    assert got.status_code == 200, got.text
    assert hashlib.sha256(got.content).hexdigest() == got.headers["X-Content-SHA256"] == doc["files"]["docx"]["sha256"]
    audited = kit.get("/api/v1/audit", as_="aud", action="personal_read", actor="scjg").json()["items"]
    assert [e["target"]["doc_id"] for e in audited] == [doc["doc_id"]]
    # the other supervised department: not addressed, so as if absent
    assert kit.get("/api/v1/documents", as_="sthj", **params).json()["total"] == 0
    assert kit.get(f"/api/v1/documents/{doc['doc_id']}", as_="sthj").status_code == 404
    assert kit.get(f"/api/v1/documents/{doc['doc_id']}/download/docx", as_="sthj").status_code == 404
    # the bureau's own list still holds it; a document named to nobody goes to every supervised department
    assert kit.get("/api/v1/documents", as_="sup", dept=SFJ, **params).json()["total"] == 1
    opinion = render(documents, case_id, kind="supervision_opinion",
                     facts={**NOTICE, "dept_name": "各被监督部门", "opinions": "补充执法人员"})
    assert opinion["ok"] and opinion["document"]["addressees"] == [SCJG, STHJ], opinion
    assert kit.get("/api/v1/documents", as_="sthj", **params).json()["total"] == 1
    assert kit.get("/api/v1/documents", as_="scjg", **params).json()["total"] == 2


def test_addressees_are_checked_against_the_supervision_case(bureau):
    kit, documents, case_id = bureau
    stranger = render(documents, case_id, addressee=CGJ)
    assert (stranger["ok"], stranger["error"]["code"], stranger["error"]["field"]) == (False, "invalid_value", "addressee")
    assert "不是监督案件" in stranger["error"]["message"]
    missing = render(documents, "JD-20260101-nosuch00", addressee=SCJG)
    assert (missing["error"]["code"], missing["error"]["field"]) == ("not_found", "subject_id")
    by_department = render(documents, case_id, dept=SCJG, addressee=STHJ)
    assert by_department["error"]["field"] == "addressee"
    outsider = render(documents, case_id, kind="service_receipt", dept=CGJ, facts={})
    assert outsider["error"]["code"] == "not_owner"
    not_supervision = documents.render(kind="service_receipt", subject_type="case", subject_id="C-1", dept=SCJG,
                                       facts={}, formats=["docx"], addressee=STHJ)
    assert not_supervision["error"]["field"] == "addressee"
    # nothing refused was stored or numbered
    assert kit.get("/api/v1/documents", as_="sup", dept=SFJ).json()["total"] == 0
