"""Coordination (司法局协调监督) facts: findings-inbox triage and supervision cases (监督案件).

The console's commands produce these facts (source "zhifa"); the justice bureau's or a
department's own system may report the same facts through the ingress. Either way the
coordination domain decides who may report what: only the justice bureau triages, opens, issues,
verifies and closes; a department replies and reports rectification only for its own part of a
case (refused otherwise, like any other fact about another department's subject).
"""
from __future__ import annotations

from contracts.fields import DATE, DEPT, ID, SHORT, TEXT, opt, req
from contracts.model import EventContract

FINDING_KEY = {"type": "string", "minlength": 1, "maxlength": 240}
ACTOR = {"type": "string", "minlength": 1, "maxlength": 64}
NOTE = {"type": "string", "maxlength": 500}
CONTENT = {**TEXT, "minlength": 1}
KIND = {"type": "string", "allowed": ["routine", "key", "special"]}
ORIGIN = {"type": "string", "allowed": ["finding", "complaint", "initiative"]}
DOC_KIND = {"type": "string", "allowed": ["notice", "opinion", "decision"]}
TITLE = {"type": "string", "minlength": 1, "maxlength": 200}

KEY_EXAMPLE = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0031"
CASE_EXAMPLE = "JD-20240506-0001"


def _contract(type_: str, doc: str, schema: dict, example: dict, tag: str) -> EventContract:
    return EventContract(type=type_, version=1, owner="coordination", doc=doc, schema=schema, example=example,
                         tags=(tag,))


INBOX = [
    _contract("inbox.acknowledged", "司法局监督人员已阅一条监督发现（仍在响应时限内计算升级）。",
              {"finding_key": req(FINDING_KEY), "actor": opt(ACTOR), "note": opt(NOTE)},
              {"finding_key": KEY_EXAMPLE, "actor": "zhangwei", "note": "已阅，待核实现场记录"}, "inbox"),
    _contract("inbox.assigned", "监督发现交办给承办人（再次交办即改派）。",
              {"finding_key": req(FINDING_KEY), "assignee": req(ACTOR), "actor": opt(ACTOR), "note": opt(NOTE)},
              {"finding_key": KEY_EXAMPLE, "assignee": "李娜", "actor": "zhangwei", "note": "请三日内核实"}, "inbox"),
    _contract("inbox.dismissed", "监督发现不予处理，须说明理由。",
              {"finding_key": req(FINDING_KEY), "reason": req({**NOTE, "minlength": 4}), "actor": opt(ACTOR)},
              {"finding_key": KEY_EXAMPLE, "reason": "经核实第二名执法人员在场，系记录漏填，已补正", "actor": "zhangwei"},
              "inbox"),
    _contract("inbox.merged", "监督发现与同一部门的另一条重复，合并到后者。",
              {"finding_key": req(FINDING_KEY), "into": req(FINDING_KEY), "actor": opt(ACTOR)},
              {"finding_key": KEY_EXAMPLE, "into": "PEN-OFFICER-CREDENTIAL:case:511322-scjg-2024-0031",
               "actor": "zhangwei"}, "inbox"),
]

SUPERVISION = [
    _contract("supervision.opened",
              "司法局立监督案件：日常/重点监督针对一个部门，专项监督可涉及多个部门并须有检查清单；来源为监督发现或投诉举报时注明编号。",
              {"case_id": req(ID), "kind": req(KIND), "origin": req(ORIGIN),
               "origin_refs": req({"type": "list", "maxlength": 50, "schema": FINDING_KEY}),
               "depts": req({"type": "list", "minlength": 1, "maxlength": 100, "schema": DEPT}),
               "title": req(TITLE),
               "checklist": req({"type": "list", "maxlength": 100, "schema": {"type": "string", "minlength": 1,
                                                                                 "maxlength": 200}}),
               "opened_on": req(DATE), "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "kind": "routine", "origin": "finding", "origin_refs": [KEY_EXAMPLE],
               "depts": ["511322-scjg"], "title": "县市场监管局调查取证执法人员不足2人", "checklist": [],
               "opened_on": "2024-05-06", "actor": "zhangwei"}, "supervision"),
    _contract("supervision.document_issued",
              "向案件中的一个部门制发行政执法监督通知书/意见书/决定书（文号、答复期限、是否要求整改及整改期限）。",
              {"case_id": req(ID), "dept": req(DEPT), "doc_kind": req(DOC_KIND),
               "doc_no": req({**SHORT, "minlength": 1}), "issued_on": req(DATE), "reply_due": req(DATE),
               "rectification_required": req({"type": "boolean"}), "rectification_due": opt(DATE),
               "summary": opt(TEXT), "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "dept": "511322-scjg", "doc_kind": "opinion", "doc_no": "营司监意〔2024〕1号",
               "issued_on": "2024-05-06", "reply_due": "2024-05-24", "rectification_required": True,
               "rectification_due": "2024-06-17", "summary": "调查询问笔录仅一名执法人员签名，请说明情况并整改",
               "actor": "zhangwei"}, "supervision"),
    _contract("supervision.replied", "部门对监督文书的书面答复（只能答复本部门的监督案件）。",
              {"case_id": req(ID), "dept": req(DEPT), "replied_on": req(DATE), "content": req(CONTENT),
               "rectification_plan": opt(TEXT), "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "dept": "511322-scjg", "replied_on": "2024-05-20",
               "content": "经查，第二名执法人员在场但漏签，已补签并组织全员学习执法程序",
               "rectification_plan": "6月上旬完成全部在办案件笔录自查"}, "supervision"),
    _contract("supervision.rectified", "部门报告整改完成（只能报告本部门的整改）。",
              {"case_id": req(ID), "dept": req(DEPT), "rectified_on": req(DATE), "content": req(CONTENT),
               "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "dept": "511322-scjg", "rectified_on": "2024-06-03",
               "content": "已完成在办案件笔录自查 37 件，补正 2 件"}, "supervision"),
    _contract("supervision.verified", "司法局核查部门的答复与整改；未通过须给出新的整改期限。",
              {"case_id": req(ID), "dept": req(DEPT), "passed": req({"type": "boolean"}), "verified_on": req(DATE),
               "comment": opt(TEXT), "new_rectification_due": opt(DATE), "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "dept": "511322-scjg", "passed": False, "verified_on": "2024-06-05",
               "comment": "抽查 5 件仍有 1 件未补正", "new_rectification_due": "2024-06-30", "actor": "zhangwei"},
              "supervision"),
    _contract("supervision.closed", "监督案件办结（各部门均核查通过）。",
              {"case_id": req(ID), "closed_on": req(DATE), "conclusion": req(CONTENT), "actor": opt(ACTOR)},
              {"case_id": CASE_EXAMPLE, "closed_on": "2024-06-21", "conclusion": "整改到位，予以办结",
               "actor": "zhangwei"}, "supervision"),
]

CONTRACTS = [*INBOX, *SUPERVISION]
