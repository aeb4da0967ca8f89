"""Inspection planning contracts (检查计划、检查对象名录库、双随机抽取、检查登记).

Departments report plans, pools, inspection records and (when they draw in their own system)
draws; departments that draw inside Zhifa use the service's commands, which produce the same
`inspection_draw.*` facts (source "zhifa"). The vocabularies come from the inspection domain.
Facts the service derives for its own aggregates (`inspection.planned`, `inspection.drawn`,
`inspection_unit.*`) are deliberately not contracts: no department can send them.
"""
from contracts.fields import DATE, DATETIME, DEPT, ID, NAME, SHORT, TEXT, opt, req
from contracts.model import EventContract
from services.inspection.domain import INSPECTION_KINDS, OUTCOMES, PLAN_KINDS

BOOL = {"type": "boolean"}
IDS = {"type": "list", "maxlength": 50, "schema": ID}
OFFICERS = {"type": "list", "maxlength": 20, "schema": ID}
ITEM_CODES = {"type": "list", "minlength": 1, "maxlength": 50, "schema": ID}
DEPTS = {"type": "list", "maxlength": 20, "schema": DEPT}
TARGET_ID = {"type": "string", "regex": r"^[0-9A-Za-z]{6,30}$"}  # 统一社会信用代码 or another registration number
HEX64 = {"type": "string", "regex": r"^[0-9a-f]{64}$"}
URL = {"type": "string", "regex": r"^https?://\S+$", "maxlength": 500}
GRADE = {"type": "string", "maxlength": 16}
TARGET = {"type": "dict", "schema": {"id": req(TARGET_ID), "name": req(NAME)}}
MEMBER = {"type": "dict", "schema": {"id": req(TARGET_ID), "name": req(NAME), "grade": opt(GRADE),
                                     "industry": opt(SHORT), "region": opt({"type": "string", "regex": r"^[0-9]{6,12}$"})}}
GRADE_KEYS = {"type": "string", "maxlength": 16}
ANNOUNCEMENT = {"type": "dict", "schema": {
    "draw_id": req(ID), "dept": req(DEPT), "plan_id": opt(ID), "pool_id": opt(ID), "announced_at": opt(DATETIME),
    "targets": req({"type": "list", "maxlength": 2000, "schema": {"type": "dict", "schema": {
        "id": req(TARGET_ID), "name": req(NAME), "grade": req(GRADE)}}}),
    "inspectors": req({"type": "list", "maxlength": 500, "schema": {"type": "dict", "schema": {
        "id": req(ID), "name": req(NAME, nullable=True)}}}),
    "params": req({"type": "dict", "schema": {
        "ratios": opt({"type": "dict", "maxlength": 20, "keysrules": GRADE_KEYS,
                       "valuesrules": {"type": "number", "min": 0, "max": 1}}),
        "counts": opt({"type": "dict", "maxlength": 20, "keysrules": GRADE_KEYS,
                       "valuesrules": {"type": "integer", "min": 0, "max": 100000}}),
        "inspectors_per_target": req({"type": "integer", "min": 1, "max": 20}),
    }}),
    "conflicts": req({"type": "list", "maxlength": 2000, "schema": {"type": "dict", "schema": {
        "officer_id": req(ID), "target_id": req(TARGET_ID), "relation": opt(SHORT)}}}),
    "seed": req({"type": "dict", "schema": {
        "method": req({"type": "string", "allowed": ["commit_reveal", "beacon"]}),
        "commitment": opt(HEX64), "source": opt(SHORT)}}),
}}
RESULT = {"type": "dict", "schema": {
    "targets": req({"type": "list", "maxlength": 2000, "schema": {"type": "dict", "schema": {
        "id": req(TARGET_ID), "grade": req(GRADE), "rank": req({"type": "integer", "min": 1})}}}),
    "assignments": req({"type": "list", "maxlength": 2000, "schema": {"type": "dict", "schema": {
        "target_id": req(TARGET_ID), "officers": req(OFFICERS)}}}),
    "shortages": req({"type": "list", "maxlength": 2000, "schema": {"type": "dict", "schema": {
        "target_id": req(TARGET_ID), "eligible": req({"type": "integer", "min": 0}),
        "needed": req({"type": "integer", "min": 1})}}}),
}}


def one_of(values) -> dict:
    return {"type": "string", "allowed": list(values)}


def _c(type_: str, doc: str, schema: dict, example: dict) -> EventContract:
    return EventContract(type=type_, version=1, owner="inspection", doc=doc, schema=schema, example=example,
                         direction="ingress", tags=("inspection",))


DEPT_EX = "370322-scjg"
PLAN_ID = "370322-scjg-JH-2026-01"
TARGET_EX = {"id": "91370322MA3C4XYZ1K", "name": "高青县惠民副食超市有限公司"}
ANNOUNCEMENT_EX = {
    "draw_id": "370322-scjg-SJ-2026-03", "dept": DEPT_EX, "plan_id": PLAN_ID, "pool_id": "370322-scjg-MLK-food",
    "announced_at": "2026-03-02T09:00:00+08:00",
    "targets": [{"id": "91370322MA3C4XYZ1K", "name": "高青县惠民副食超市有限公司", "grade": "B"},
                {"id": "92370322MA3D1ABC2P", "name": "高青县田镇鲜果便利店", "grade": "C"}],
    "inspectors": [{"id": "37032200123", "name": "刘洋"}, {"id": "37032200456", "name": "陈静"},
                   {"id": "37032200789", "name": "赵磊"}],
    "params": {"ratios": {"B": 0.5, "C": 1}, "inspectors_per_target": 2},
    "conflicts": [{"officer_id": "37032200789", "target_id": "92370322MA3D1ABC2P", "relation": "近亲属任该店负责人"}],
    "seed": {"method": "commit_reveal",
             "commitment": "6a1f0c8e5b2d4a7f9c3e1b0d8f6a4c2e0b9d7f5a3c1e9b7d5f3a1c9e7b5d3f1a"},
}
RESULT_EX = {
    "targets": [{"id": "91370322MA3C4XYZ1K", "grade": "B", "rank": 1},
                {"id": "92370322MA3D1ABC2P", "grade": "C", "rank": 1}],
    "assignments": [{"target_id": "91370322MA3C4XYZ1K", "officers": ["37032200123", "37032200789"]},
                    {"target_id": "92370322MA3D1ABC2P", "officers": ["37032200456", "37032200123"]}],
    "shortages": [],
}

CONTRACTS = [
    _c("inspection_plan.registered", "检查计划制定或重述（年度/季度/月度/专项/临时）：依据事项、主体、人员、时间、范围、内容、对象或名录库。", {
        "plan_id": req(ID), "kind": req(one_of(PLAN_KINDS)), "year": opt({"type": "integer", "min": 1949, "max": 2100}),
        "title": req(NAME), "agency_id": opt(ID), "item_codes": req(ITEM_CODES), "officers": opt(OFFICERS),
        "period_from": req(DATE), "period_to": req(DATE), "scope": opt(SHORT), "content": opt(TEXT),
        "targets": opt({"type": "list", "maxlength": 500, "schema": TARGET}), "pool_id": opt(ID),
        "joint_depts": opt(DEPTS), "ordered_from_above": opt(BOOL),
    }, {"plan_id": PLAN_ID, "kind": "quarterly", "year": 2026, "title": "2026年第二季度食品经营企业日常监督检查计划",
        "agency_id": "A370322-SCJG", "item_codes": ["J37031700100"], "officers": ["37032200123", "37032200456"],
        "period_from": "2026-04-01", "period_to": "2026-06-30", "scope": "高青县城区及田镇",
        "content": "食品经营许可、进货查验记录、过期食品清理", "targets": [TARGET_EX],
        "pool_id": "370322-scjg-MLK-food", "joint_depts": ["370322-wsjk"], "ordered_from_above": False}),
    _c("inspection_plan.filed", "检查计划向县司法局备案（司法局或计划部门报送）。", {
        "plan_id": req(ID), "filed_on": req(DATE), "filed_with": opt(NAME), "filing_no": opt(SHORT),
    }, {"plan_id": PLAN_ID, "filed_on": "2026-03-16", "filed_with": "高青县司法局", "filing_no": "高司检备〔2026〕7号"}),
    _c("inspection_plan.published", "检查计划向社会公布。", {
        "plan_id": req(ID), "published_on": req(DATE), "url": opt(URL),
    }, {"plan_id": PLAN_ID, "published_on": "2026-03-18", "url": "https://www.gaoqing.gov.cn/xxgk/jcjh/2026-q2.html"}),
    _c("inspection_plan.approved", "检查计划（专项、临时）经执法机关负责人或上级批准。", {
        "plan_id": req(ID), "approved_on": req(DATE), "approver": req(NAME), "document_no": opt(SHORT),
    }, {"plan_id": PLAN_ID, "approved_on": "2026-03-12", "approver": "王建国", "document_no": "高市监批〔2026〕3号"}),
    _c("inspection_plan.cancelled", "检查计划撤销（合并为联合检查等）。", {
        "plan_id": req(ID), "cancelled_on": req(DATE), "reason": req(SHORT),
    }, {"plan_id": PLAN_ID, "cancelled_on": "2026-03-20", "reason": "与县卫健局计划合并为联合检查"}),
    _c("inspection_pool.members_listed", "检查对象名录库新增或更新对象（统一社会信用代码、行业、区域、风险/信用等级）。", {
        "pool_id": req(ID), "name": opt(NAME),
        "members": req({"type": "list", "minlength": 1, "maxlength": 500, "schema": MEMBER}),
    }, {"pool_id": "370322-scjg-MLK-food", "name": "高青县食品经营企业检查对象名录库",
        "members": [{**TARGET_EX, "grade": "B", "industry": "食品零售", "region": "370322"}]}),
    _c("inspection_pool.members_removed", "检查对象移出名录库（注销、迁出等）。", {
        "pool_id": req(ID), "member_ids": req({"type": "list", "minlength": 1, "maxlength": 500, "schema": TARGET_ID}),
        "reason": opt(SHORT),
    }, {"pool_id": "370322-scjg-MLK-food", "member_ids": ["92370322MA3D1ABC2P"], "reason": "企业已注销"}),
    _c("inspection_draw.announced", "随机抽取公告（抽取前固定名录、参数与随机数承诺；同一抽取再次公告即为再次抽取，须说明理由）。", {
        "draw_id": req(ID), "plan_id": opt(ID), "reason": opt(SHORT), "announcement": req(ANNOUNCEMENT),
        "announcement_digest": req(HEX64),
    }, {"draw_id": "370322-scjg-SJ-2026-03", "plan_id": PLAN_ID, "reason": None, "announcement": ANNOUNCEMENT_EX,
        "announcement_digest": "1b7e3f0a9c5d2e8b4f6a0c3d9e1f7b5a2c8d4e0f6a9b3c7d1e5f2a8b0c4d6e9f"}),
    _c("inspection_draw.performed", "随机抽取实施：揭示随机数种子并记录结果（算法见 services/inspection/draw.py）。", {
        "draw_id": req(ID), "attempt": req({"type": "integer", "min": 1, "max": 1000}),
        "seed": req({"type": "string", "minlength": 1, "maxlength": 200}), "result": req(RESULT),
        "result_digest": req(HEX64),
    }, {"draw_id": "370322-scjg-SJ-2026-03", "attempt": 1,
        "seed": "3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c2e8b4d0f6a9c1e7b3d5f2a8c4e0b6d9f1a", "result": RESULT_EX,
        "result_digest": "9e2c4a6f8b0d1e3a5c7f9b2d4e6a8c0f1b3d5e7a9c2f4b6d8e0a1c3f5b7d9e2a"}),
    _c("inspection_draw.published", "随机抽取结果向社会公开。", {
        "draw_id": req(ID), "attempt": req({"type": "integer", "min": 1, "max": 1000}), "published_on": req(DATE),
        "url": opt(URL),
    }, {"draw_id": "370322-scjg-SJ-2026-03", "attempt": 1, "published_on": "2026-03-10",
        "url": "https://www.gaoqing.gov.cn/xxgk/sjyk/2026-03.html"}),
    _c("inspection.registered", "行政检查登记：谁、何时、何地、何事项、依据哪个计划或抽取、审批、结果（可事后补登并说明理由）。", {
        "inspection_id": req(ID), "target": req(TARGET), "kind": req(one_of(INSPECTION_KINDS)), "agency_id": opt(ID),
        "officers": req(OFFICERS), "auxiliaries": opt(OFFICERS),
        "third_parties": opt({"type": "list", "maxlength": 10, "schema": NAME}), "item_codes": req(ITEM_CODES),
        "started_at": req(DATETIME), "ended_at": opt(DATETIME), "plan_id": opt(ID), "draw_id": opt(ID),
        "joint_depts": opt(DEPTS), "location": opt(SHORT),
        "method": opt(one_of(("on_site", "remote", "documents"))), "emergency": opt(BOOL),
        "ordered_from_above": opt(BOOL), "late_reason": opt(SHORT),
        "approval": opt({"type": "dict", "schema": {"approved_by": req(NAME), "approved_at": req(DATETIME)}}),
        "outcome": opt(one_of(OUTCOMES)), "case_id": opt(ID), "text": opt(TEXT), "av_ref": opt(SHORT),
    }, {"inspection_id": "370322-scjg-JC-2026-0315", "target": TARGET_EX, "kind": "routine",
        "agency_id": "A370322-SCJG", "officers": ["37032200123", "37032200456"], "item_codes": ["J37031700100"],
        "started_at": "2026-04-08T09:30:00+08:00", "ended_at": "2026-04-08T11:00:00+08:00", "plan_id": PLAN_ID,
        "draw_id": "370322-scjg-SJ-2026-03", "joint_depts": ["370322-wsjk"], "location": "高青县田镇青城路18号",
        "method": "on_site", "approval": {"approved_by": "王建国", "approved_at": "2026-04-07T16:00:00+08:00"},
        "outcome": "ordered_to_correct", "text": "进货查验记录不全，责令7日内改正", "av_ref": "AV-20260408-0021"}),
    _c("inspection.concluded", "检查结果（未发现问题/责令改正/立案查处，立案时关联处罚案件）。", {
        "inspection_id": req(ID), "target_id": req(TARGET_ID), "outcome": req(one_of(OUTCOMES)), "case_id": opt(ID),
        "text": opt(TEXT),
    }, {"inspection_id": "370322-scjg-JC-2026-0315", "target_id": "91370322MA3C4XYZ1K", "outcome": "case_filed",
        "case_id": "370322-scjg-2026-0042", "text": "复查发现仍在销售过期食品，已立案"}),
    _c("inspection.approved", "检查经执法机关负责人批准（紧急检查事后补办）。", {
        "inspection_id": req(ID), "target_id": req(TARGET_ID), "approved_by": req(NAME), "approved_at": req(DATETIME),
    }, {"inspection_id": "370322-scjg-JC-2026-0315", "target_id": "91370322MA3C4XYZ1K", "approved_by": "王建国",
        "approved_at": "2026-04-08T15:00:00+08:00"}),
]
