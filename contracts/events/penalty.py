"""Penalty case events (行政处罚案件): what departments publish at each step of a case.

The vocabularies (penalty kinds, act kinds, …) come from the penalty domain, so the contract and
the state machine cannot drift apart. Every payload carries `case_id`.
"""
from contracts.fields import DATETIME, ID, MONEY, NAME, SHORT, TEXT, opt, req
from contracts.model import EventContract
from services.penalty.domain.case import (
    ACT_KINDS, CLOSE_REASONS, EXECUTION_METHODS, HEARING_OUTCOMES, PARTY_TYPES, PENALTY_KINDS, PROCEDURES,
    REVOKED_BY, SERVICE_METHODS, SOURCE_KINDS, TESTING_KINDS,
)

BOOL = {"type": "boolean"}
CASE_ID = req(ID)
OFFICERS = {"type": "list", "maxlength": 20, "schema": ID}
PEOPLE = {"type": "list", "maxlength": 30, "schema": NAME}
KINDS = {"type": "list", "maxlength": len(PENALTY_KINDS), "schema": {"type": "string", "allowed": list(PENALTY_KINDS)}}
TIER = {"type": "string", "minlength": 1, "maxlength": 40}
URL = {"type": "string", "regex": r"^https?://\S+$", "maxlength": 500}
PARTY = {"type": "dict", "schema": {
    "type": req({"type": "string", "allowed": list(PARTY_TYPES)}),
    "id": req({"type": "string", "regex": r"^[0-9A-Za-z]{6,30}$"}),  # 统一社会信用代码 / 身份证号
    "name": req(NAME),
}}
MEASURES = {"type": "dict", "maxlength": 20, "keysrules": {"type": "string", "regex": r"^[a-z][a-z0-9_]{0,39}$"},
            "valuesrules": MONEY}
CASE_FLAGS = {"complex": opt(BOOL), "major_public_interest": opt(BOOL), "legal_review_required": opt(BOOL)}


def one_of(values) -> dict:
    return {"type": "string", "allowed": list(values)}


def _c(type_: str, doc: str, schema: dict, example: dict) -> EventContract:
    return EventContract(type=type_, version=1, owner="penalty", doc=doc, schema={"case_id": CASE_ID, **schema},
                         example={"case_id": "370322-scjg-2026-0042", **example}, direction="ingress",
                         tags=("penalty",))


PARTY_EXAMPLE = {"type": "org", "id": "91370322MA3C4XYZ1K", "name": "高青县惠民副食超市有限公司"}

CONTRACTS = [
    _c("case.filed", "A case was filed (立案).", {
        "item_code": req(ID), "case_no": opt(SHORT), "procedure": opt(one_of(PROCEDURES)),
        "source_kind": opt(one_of(SOURCE_KINDS)), "discovered_at": opt(DATETIME), "summary": opt(TEXT),
        "party": opt(PARTY), "officers": opt(OFFICERS), "filing_extension_approved": opt(BOOL),
        "measures": opt(MEASURES), **CASE_FLAGS,
    }, {"item_code": "C37031700100", "case_no": "高市监立〔2026〕42号", "procedure": "normal",
        "source_kind": "complaint", "discovered_at": "2026-03-02T10:15:00+08:00",
        "summary": "群众通过12345热线举报该超市销售过期预包装食品", "party": PARTY_EXAMPLE,
        "officers": ["37032200123", "37032200456"]}),
    _c("case.investigated", "An investigation or enforcement act was done and recorded (调查取证、查封扣押…).", {
        "act_kind": req(one_of(ACT_KINDS)), "officers": req(OFFICERS), "auxiliaries": opt(OFFICERS),
        "av_recorded": opt(BOOL), "av_ref": opt(SHORT), "text": opt(TEXT), "location": opt(SHORT),
        "measures": opt(MEASURES), **CASE_FLAGS,
    }, {"act_kind": "seizure", "officers": ["37032200123", "37032200456"], "av_recorded": True,
        "av_ref": "AV-20260303-0017", "text": "现场检查货架，扣押过期酸奶42箱，当事人签字确认",
        "location": "高青县田镇青城路18号", "measures": {"sales_amount": 8600}}),
    _c("case.testing_started", "Testing, inspection, quarantine or appraisal began (检验检测鉴定，不计入办案期限).", {
        "kind": req(one_of(TESTING_KINDS)), "institution": opt(NAME),
    }, {"kind": "testing", "institution": "淄博市食品药品检验研究院"}),
    _c("case.testing_completed", "Testing or appraisal finished and its report came back.", {
        "report_ref": opt(SHORT),
    }, {"report_ref": "ZBJY-2026-0315"}),
    _c("case.extended", "The case-handling period was extended (延长办案期限).", {
        "days": req({"type": "integer", "min": 1, "max": 365}), "approved": req(BOOL), "approver": opt(NAME),
        "reason": opt(TEXT),
    }, {"days": 30, "approved": True, "approver": "王建国", "reason": "案情复杂，需调取外省进货凭证"}),
    _c("case.suspended", "The case was suspended (中止); the time does not count toward the limit.", {
        "reason": opt(TEXT),
    }, {"reason": "当事人下落不明，依法中止案件调查"}),
    _c("case.resumed", "A suspended case was resumed (恢复).", {"reason": opt(TEXT)},
       {"reason": "中止原因消除"}),
    _c("case.notified", "The party was told of the intended penalty and rights (行政处罚告知).", {
        "hearing_right": req(BOOL), "proposed_kinds": opt(KINDS), "proposed_fine": opt(MONEY),
        "officers": opt(OFFICERS), "method": opt(one_of(SERVICE_METHODS)), "text": opt(TEXT),
    }, {"hearing_right": True, "proposed_kinds": ["fine", "confiscation"], "proposed_fine": 50000,
        "method": "direct", "text": "告知当事人拟作出的行政处罚及陈述、申辩、要求听证的权利"}),
    _c("case.hearing_requested", "The party asked for a hearing (申请听证).", {"text": opt(TEXT)},
       {"text": "当事人书面申请听证"}),
    _c("case.hearing_notified", "The party was notified of the hearing's time and place (听证通知).", {
        "hearing_at": req(DATETIME), "place": opt(SHORT),
    }, {"hearing_at": "2026-04-20T09:30:00+08:00", "place": "高青县市场监督管理局三楼听证室"}),
    _c("case.hearing_held", "The hearing took place, or ended by withdrawal or absence (举行听证).", {
        "outcome": opt(one_of(HEARING_OUTCOMES)), "officers": opt(OFFICERS), "av_recorded": opt(BOOL),
        "av_ref": opt(SHORT), "text": opt(TEXT),
    }, {"outcome": "held", "officers": ["37032200789"], "av_recorded": True, "av_ref": "AV-20260420-0003",
        "text": "听证主持人：李明；当事人委托代理人到场陈述申辩"}),
    _c("case.legal_reviewed", "The legal review (法制审核) gave its opinion.", {
        "passed": req(BOOL), "reviewer": opt(NAME), "opinion": opt(TEXT),
    }, {"passed": True, "reviewer": "张丽（公职律师）", "opinion": "主体合法，事实清楚，证据确凿，适用依据正确，裁量适当"}),
    _c("case.collectively_discussed", "The agency heads discussed the case collectively (集体讨论).", {
        "participants": opt(PEOPLE), "conclusion": opt(TEXT),
    }, {"participants": ["王建国", "刘洋", "陈静", "赵磊"], "conclusion": "同意按一般阶次处以罚款并没收违法所得"}),
    _c("case.transferred_to_police", "The case was handed over to the police as a suspected crime (移送公安).", {
        "handover_id": opt(ID), "police_unit": opt(NAME), "suspected_crime": opt(SHORT), "text": opt(TEXT),
    }, {"handover_id": "370322-scjg-YS-2026-003", "police_unit": "高青县公安局食品药品环境犯罪侦查大队",
        "suspected_crime": "涉嫌销售伪劣产品罪"}),
    _c("case.decided", "A penalty decision (or a decision not to penalise: empty kinds) was made.", {
        "decision_no": req(SHORT), "kinds": req(KINDS), "fine_amount": opt(MONEY),
        "confiscation_amount": opt(MONEY), "tier": opt(TIER), "item_code": opt(ID), "party": req(PARTY),
        "act_code": req(ID), "procedure": opt(one_of(PROCEDURES)), "officers": opt(OFFICERS),
        "measures": opt(MEASURES), "publication_exempt": opt(BOOL), "hearing_waived": opt(BOOL),
        "text": opt(TEXT), **CASE_FLAGS,
    }, {"decision_no": "高市监罚〔2026〕42号", "kinds": ["fine", "confiscation"], "fine_amount": 50000,
        "confiscation_amount": 8600, "tier": "一般", "item_code": "C37031700100", "party": PARTY_EXAMPLE,
        "act_code": "FOOD-EXPIRED-SALE", "officers": ["37032200123", "37032200456"]}),
    _c("case.decided_on_spot", "A penalty was imposed on the spot under the simple procedure (当场处罚). "
       "`tier` is the discretion tier applied (裁量阶次, id or name); without it the fine must lie inside some "
       "tier of the item's standard in force, else PEN-FINE-OUT-OF-TIER.", {
        "decision_no": req(SHORT), "kinds": req(KINDS), "fine_amount": opt(MONEY), "tier": opt(TIER), "item_code": req(ID),
        "party": req(PARTY), "act_code": req(ID), "officers": req(OFFICERS), "auxiliaries": opt(OFFICERS),
        "av_recorded": opt(BOOL), "av_ref": opt(SHORT), "paid_on_spot": opt(BOOL), "text": opt(TEXT),
    }, {"decision_no": "高城管当罚〔2026〕118号", "kinds": ["fine"], "fine_amount": 100,
        "item_code": "C37031900020", "party": {"type": "person", "id": "370322199001011234", "name": "孙某"},
        "act_code": "STREET-VENDING", "officers": ["37032205011", "37032205012"], "av_recorded": True,
        "paid_on_spot": False, "tier": "从轻"}),
    _c("case.served", "The decision was served on the party (送达); served_at: when service took effect.", {
        "method": req(one_of(SERVICE_METHODS)), "served_at": opt(DATETIME), "text": opt(TEXT),
    }, {"method": "direct", "served_at": "2026-05-08T15:00:00+08:00", "text": "当事人法定代表人签收送达回证"}),
    _c("case.paid", "The party paid (part of) the fine at the bank (缴纳罚款，罚缴分离).", {
        "amount": req(MONEY), "late_fee": opt(MONEY), "receipt_no": opt(SHORT),
    }, {"amount": 50000, "receipt_no": "FS37032226000123"}),
    _c("case.published", "The decision was published (行政处罚决定公示).", {
        "url": opt(URL), "platform": opt(NAME),
    }, {"url": "https://www.gaoqing.gov.cn/xzcf/2026/42.html", "platform": "国家企业信用信息公示系统"}),
    _c("case.major_penalty_filed", "A major penalty decision was filed with the justice bureau (重大行政处罚备案).", {
        "filing_no": opt(SHORT), "filed_with": opt(NAME),
    }, {"filing_no": "高司备〔2026〕9号", "filed_with": "高青县司法局"}),
    _c("case.executed", "The decision was fully executed (执行完毕).", {
        "method": opt(one_of(EXECUTION_METHODS)), "text": opt(TEXT),
    }, {"method": "voluntary", "text": "罚没款已缴清，扣押物品已依法销毁"}),
    _c("case.decision_changed", "A decision was changed (变更处罚决定), e.g. after reconsideration.", {
        "by": req(one_of(REVOKED_BY)), "reason": opt(TEXT), "kinds": opt(KINDS), "fine_amount": opt(MONEY),
        "confiscation_amount": opt(MONEY), "tier": opt(TIER),
    }, {"by": "reconsideration", "reason": "复议机关认为罚款明显不当，变更为从轻阶次", "fine_amount": 30000,
        "tier": "从轻"}),
    _c("case.decision_revoked", "A decision was revoked (撤销处罚决定).", {
        "by": req(one_of(REVOKED_BY)), "reason": opt(TEXT),
    }, {"by": "court", "reason": "人民法院判决撤销，责令重新作出"}),
    _c("case.publication_withdrawn", "A published decision was taken down (撤下公示).", {"reason": opt(TEXT)},
       {"reason": "原处罚决定已被依法撤销"}),
    _c("case.closed", "The case was closed (结案).", {"reason": req(one_of(CLOSE_REASONS)), "text": opt(TEXT)},
       {"reason": "executed", "text": "处罚决定执行完毕，报请结案"}),
    _c("case.archived", "The case file was archived (归档).", {"archive_no": opt(SHORT)},
       {"archive_no": "高市监档〔2026〕0042"}),
]
