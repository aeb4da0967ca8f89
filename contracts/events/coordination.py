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
    _contract("inbox.case_opened", "已就该监督发现立监督案件（视为已处理，不再升级；来源消除前仍为未结）。",
              {"finding_key": req(FINDING_KEY), "case_id": req(ID), "actor": opt(ACTOR)},
              {"finding_key": KEY_EXAMPLE, "case_id": "JD-20240506-0001", "actor": "zhangwei"}, "inbox"),
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

CHANNEL = {"type": "string", "allowed": ["hotline_12345", "console", "letter", "online", "visit"]}
COMPLAINANT = {"type": "dict", "schema": {"name": opt({"type": "string", "maxlength": 50}),
                                          "phone": opt({"type": "string", "regex": r"^[0-9+\-]{5,20}$"})}}
PARTY_ID = {"type": "string", "minlength": 1, "maxlength": 64}
COMPLAINT_ID = {**ID}
CID_EXAMPLE = "12345-20240506-0001"

COMPLAINTS = [
    _contract("complaint.received", "投诉举报登记（12345 热线系统或司法局控制台）；投诉人信息为个人信息。",
              {"complaint_id": req(COMPLAINT_ID), "channel": req(CHANNEL), "received_on": req(DATE),
               "summary": req(CONTENT), "complainant": opt(COMPLAINANT), "party_id": opt(PARTY_ID),
               "officer_id": opt(ID), "actor": opt(ACTOR)},
              {"complaint_id": CID_EXAMPLE, "channel": "hotline_12345", "received_on": "2024-05-06",
               "summary": "某超市销售过期食品，投诉后无人处理", "complainant": {"name": "王某", "phone": "13800000000"},
               "party_id": "91511322MA0000001X"}, "complaints"),
    _contract("complaint.routed", "司法局将投诉举报转办给被投诉的执法部门（再次转办即改派）。",
              {"complaint_id": req(COMPLAINT_ID), "dept": req(DEPT), "routed_on": req(DATE), "actor": opt(ACTOR)},
              {"complaint_id": CID_EXAMPLE, "dept": "511322-scjg", "routed_on": "2024-05-07", "actor": "zhangwei"},
              "complaints"),
    _contract("complaint.acknowledged", "承办部门受理投诉举报（只能受理转办给本部门的）。",
              {"complaint_id": req(COMPLAINT_ID), "dept": req(DEPT), "acknowledged_on": req(DATE),
               "actor": opt(ACTOR)},
              {"complaint_id": CID_EXAMPLE, "dept": "511322-scjg", "acknowledged_on": "2024-05-08"}, "complaints"),
    _contract("complaint.answered", "承办部门答复投诉举报（只能答复转办给本部门的）。",
              {"complaint_id": req(COMPLAINT_ID), "dept": req(DEPT), "answered_on": req(DATE), "answer": req(CONTENT),
               "actor": opt(ACTOR)},
              {"complaint_id": CID_EXAMPLE, "dept": "511322-scjg", "answered_on": "2024-05-20",
               "answer": "已现场检查，下架过期食品 12 件并立案调查"}, "complaints"),
    _contract("complaint.feedback", "司法局回访投诉人（满意/不满意），投诉举报办结。",
              {"complaint_id": req(COMPLAINT_ID), "satisfied": req({"type": "boolean"}), "feedback_on": req(DATE),
               "comment": opt(TEXT), "actor": opt(ACTOR)},
              {"complaint_id": CID_EXAMPLE, "satisfied": True, "feedback_on": "2024-05-21", "comment": "满意"},
              "complaints"),
]

DOC_ID_EXAMPLE = "511322-scjg-gf-2024-01"
NORMATIVE = [
    _contract("normative_document.issued", "部门制发规范性文件（应自制发之日起30日内报司法局备案）。",
              {"doc_id": req(ID), "title": req(TITLE), "doc_no": req({**SHORT, "minlength": 1}),
               "issued_on": req(DATE), "actor": opt(ACTOR)},
              {"doc_id": DOC_ID_EXAMPLE, "title": "行政处罚裁量基准实施办法", "doc_no": "营市监规〔2024〕1号",
               "issued_on": "2024-03-01"}, "normative"),
    _contract("normative_document.filed", "制发部门将规范性文件报司法局备案。",
              {"doc_id": req(ID), "filed_on": req(DATE), "actor": opt(ACTOR)},
              {"doc_id": DOC_ID_EXAMPLE, "filed_on": "2024-03-20"}, "normative"),
    _contract("normative_document.reviewed", "司法局备案审查结论：通过/责令纠正/撤销（后两者须说明理由）。",
              {"doc_id": req(ID), "outcome": req({"type": "string", "allowed": ["approved", "corrected", "revoked"]}),
               "reviewed_on": req(DATE), "comment": opt(TEXT), "actor": opt(ACTOR)},
              {"doc_id": DOC_ID_EXAMPLE, "outcome": "approved", "reviewed_on": "2024-04-10", "actor": "zhangwei"},
              "normative"),
]

DEVICE_EXAMPLE = "511322-jtys-cam-0007"
DEVICES = [
    _contract("device.registered", "部门登记电子技术监控设备（设置地点、用途），须经司法局审核并向社会公布后方可使用。",
              {"device_id": req(ID), "location": req(TITLE), "purpose": opt(SHORT), "registered_on": req(DATE),
               "actor": opt(ACTOR)},
              {"device_id": DEVICE_EXAMPLE, "location": "G350 线 12km 处（往县城方向）", "purpose": "超限超载检测",
               "registered_on": "2024-03-01"}, "devices"),
    _contract("device.reviewed", "司法局审核电子技术监控设备（法制审核：合法性、必要性、标志设置）。",
              {"device_id": req(ID), "passed": req({"type": "boolean"}), "reviewed_on": req(DATE),
               "comment": opt(TEXT), "actor": opt(ACTOR)},
              {"device_id": DEVICE_EXAMPLE, "passed": True, "reviewed_on": "2024-03-05", "comment": "设置合理，标志清晰"},
              "devices"),
    _contract("device.published", "部门向社会公布电子技术监控设备的设置地点。",
              {"device_id": req(ID), "published_on": req(DATE), "actor": opt(ACTOR)},
              {"device_id": DEVICE_EXAMPLE, "published_on": "2024-03-10"}, "devices"),
    _contract("device.used", "部门以电子技术监控设备记录的证据办理案件（非现场执法）。",
              {"device_id": req(ID), "used_on": req(DATE), "case_id": opt(ID), "actor": opt(ACTOR)},
              {"device_id": DEVICE_EXAMPLE, "used_on": "2024-03-12", "case_id": "511322-jtys-2024-0102"}, "devices"),
]

DSP_EXAMPLE = "GX-20240506-0001"
DISPUTES = [
    _contract("dispute.raised", "部门就某事项与其他部门发生管辖争议（注明本部门立案日期：最先立案者管辖，行政处罚法第二十五条）。",
              {"dispute_id": req(ID), "matter": req(TITLE), "parties": req({"type": "list", "minlength": 1,
                                                                            "maxlength": 20, "schema": DEPT}),
               "raised_on": req(DATE), "filed_on": opt(DATE), "actor": opt(ACTOR)},
              {"dispute_id": DSP_EXAMPLE, "matter": "农贸市场内无证经营食品的查处", "parties": ["511322-sthj"],
               "raised_on": "2024-05-06", "filed_on": "2024-04-20"}, "disputes"),
    _contract("dispute.answered", "争议另一方答复（是否同意、其立案日期）。",
              {"dispute_id": req(ID), "agrees": req({"type": "boolean"}), "answered_on": req(DATE),
               "position": opt(TEXT), "filed_on": opt(DATE), "actor": opt(ACTOR)},
              {"dispute_id": DSP_EXAMPLE, "agrees": False, "answered_on": "2024-05-08",
               "position": "本局已于4月15日立案", "filed_on": "2024-04-15"}, "disputes"),
    _contract("dispute.agreed", "经司法局协调，争议各方协商一致，确定管辖部门。",
              {"dispute_id": req(ID), "lead_dept": req(DEPT), "settled_on": req(DATE), "note": opt(NOTE),
               "actor": opt(ACTOR)},
              {"dispute_id": DSP_EXAMPLE, "lead_dept": "511322-sthj", "settled_on": "2024-05-09",
               "note": "按最先立案原则由生态环境局管辖"}, "disputes"),
    _contract("dispute.referred", "协商不成，报请共同的上一级机关指定管辖。",
              {"dispute_id": req(ID), "referred_to": req(TITLE), "referred_on": req(DATE), "actor": opt(ACTOR)},
              {"dispute_id": DSP_EXAMPLE, "referred_to": "县人民政府", "referred_on": "2024-06-06"}, "disputes"),
    _contract("dispute.decided", "共同上级机关指定管辖的决定（由司法局登记）。",
              {"dispute_id": req(ID), "lead_dept": req(DEPT), "settled_on": req(DATE), "basis": opt(TEXT),
               "actor": opt(ACTOR)},
              {"dispute_id": DSP_EXAMPLE, "lead_dept": "511322-scjg", "settled_on": "2024-06-20",
               "basis": "县政府办公室指定管辖通知"}, "disputes"),
]

ITEM_ID = {"type": "string", "regex": r"^[a-z][a-z0-9_]{0,39}$"}
SAMPLE_ROW = {"type": "dict", "schema": {
    "case_id": req(ID), "dept": req(DEPT),
    "prefilled": req({"type": "dict", "maxlength": 50, "keysrules": ITEM_ID,
                      "valuesrules": {"type": "list", "maxlength": 30, "schema": {"type": "string", "maxlength": 48}}}),
}}
REVIEW = [
    _contract("review.drawn", "案卷评查抽取（可复现：种子 + 案卷总体摘要 → 样本；系统已知的问题预填为评查项不合格）。",
              {"plan_id": req(ID), "year": req({"type": "integer", "min": 2000, "max": 2100}),
               "per_dept": req({"type": "integer", "min": 1, "max": 500}), "seed": req({**SHORT, "minlength": 1}),
               "population_size": req({"type": "integer", "min": 1}),
               "population_digest": req({"type": "string", "regex": r"^[0-9a-f]{64}$"}),
               "sample": req({"type": "list", "minlength": 1, "maxlength": 5000, "schema": SAMPLE_ROW}),
               "actor": opt(ACTOR)},
              {"plan_id": "PC-2024-3f2a9c1e", "year": 2024, "per_dept": 5, "seed": "2025-01-10 县司法局评查抽签",
               "population_size": 212, "population_digest": "5" * 64,
               "sample": [{"case_id": "511322-scjg-2024-0031", "dept": "511322-scjg",
                           "prefilled": {"two_officers": ["PEN-OFFICERS-MIN"]}}]}, "review"),
    _contract("review.scored", "评查人员对样本案卷的评分（不合格的评查项；再次评分即更正）。",
              {"plan_id": req(ID), "case_id": req(ID),
               "failed": req({"type": "list", "maxlength": 50, "schema": ITEM_ID}), "comment": opt(TEXT),
               "actor": opt(ACTOR)},
              {"plan_id": "PC-2024-3f2a9c1e", "case_id": "511322-scjg-2024-0031", "failed": ["two_officers"],
               "comment": "询问笔录仅一名执法人员签名"}, "review"),
]
EVALUATION = [
    _contract("evaluation.entered", "评议考核中由评议人员评分的指标得分（0–100）及依据。",
              {"year": req({"type": "string", "regex": r"^\d{4}$"}), "dept": req(DEPT),
               "indicator": req({"type": "string", "regex": r"^[a-z][a-z0-9_]{0,39}$"}),
               "score": req({"type": "number", "min": 0, "max": 100}), "evidence": req(CONTENT), "actor": opt(ACTOR)},
              {"year": "2024", "dept": "511322-scjg", "indicator": "training", "score": 85,
               "evidence": "全员完成20学时公共法律知识培训，培训计划已备案"}, "evaluation"),
]

MONTH = {"type": "string", "regex": r"^\d{4}-(0[1-9]|1[0-2])$"}
REPORTING = [
    _contract("monthly_report.opened", "司法局发起某月的月报报送（应报部门名单）；服务在月末后按配置自动发起。",
              {"month": req(MONTH), "roster": req({"type": "list", "maxlength": 200, "schema": DEPT})},
              {"month": "2024-05", "roster": ["511322-scjg", "511322-sthj", "511322-jtys"]}, "reporting"),
    _contract("monthly_report.submitted", "部门报送上月行政执法工作月报（次月10日前，seed 001）。",
              {"month": req(MONTH), "submitted_on": req(DATE), "actor": opt(ACTOR)},
              {"month": "2024-05", "submitted_on": "2024-06-07"}, "reporting"),
]

CONTRACTS = [*INBOX, *SUPERVISION, *COMPLAINTS, *NORMATIVE, *DEVICES, *DISPUTES, *REVIEW, *EVALUATION, *REPORTING]
