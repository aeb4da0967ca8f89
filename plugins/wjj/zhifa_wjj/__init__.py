"""卫生健康 (health) department plugin for Zhifa: departments whose code ends in `-wjj` or `-wsjk`.

A separate distribution (plugins/wjj/pyproject.toml) discovered through the entry point
`zhifa.plugins: wjj`. It marks its hooks with its own pluggy marker for the project "zhifa" and
imports nothing of the suite at import time (its rule builds the documented `Finding` when it runs).
Sources and the choices made where they are silent: plugins/wjj/README.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("zhifa")

DEPT_SUFFIXES = ("-wjj", "-wsjk")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# -- numbers ------------------------------------------------------------------------------------
# 《卫生行政处罚程序》(卫生部令第53号) Art. 17: a case that meets the conditions is filed within 7 days
# of acceptance. The suite counts filing limits in working days: 5 working days after a working day
# end 7 calendar days later (or later, across a holiday); README names the choice and its edges.
PENALTY_SETTINGS: dict[str, Any] = {"filing_wd": 5, "filing_extension_wd": 0}

# 《公共场所卫生管理条例实施细则》Art. 35(1): operating without a hygiene licence — warning and
# 500–5,000 yuan; 5,000–30,000 yuan when the operator was punished by a health department before,
# operated for three months or more, or used an altered/transferred/forged licence.
PUBLIC_PLACE_BASIS = {"law": "《公共场所卫生管理条例实施细则》", "article": "第三十五条"}
PUBLIC_PLACE_BASE_RANGE = (500.0, 5_000.0)
PUBLIC_PLACE_AGGRAVATED_RANGE = (5_000.0, 30_000.0)
PUBLIC_PLACE_AGGRAVATING_DAYS = 90          # "三个月以上", read as 90 days (README)
PRIOR_PENALTY_WINDOW_DAYS = 730             # "曾受过卫生行政部门处罚": looked back two years (README)
MEASURE_UNLICENSED_DAYS = "unlicensed_operation_days"   # 擅自营业天数
MEASURE_FORGED_LICENCE = "forged_licence"               # 1 = 以涂改、转让、倒卖、伪造的卫生许可证擅自营业
RULE_PUBLIC_PLACE_RANGE = "PEN-WJJ-PUBLIC-PLACE-RANGE"

# -- crime thresholds, keyed by the administrative legal basis that can reach the crime -----------
# 妨害传染病防治罪 (《刑法》第三百三十条第一款第（一）项: 供水单位供应的饮用水不符合国家规定的卫生标准，
# 引起甲类传染病以及依法确定采取甲类传染病预防、控制措施的传染病传播或者有传播严重危险); prosecution
# standard: 《最高人民检察院、公安部关于公安机关管辖的刑事案件立案追诉标准的规定（一）》第四十九条.
WATER_BASES = [{"law": "《中华人民共和国传染病防治法》", "article": "第七十三条"}]
# 非法行医罪 (《刑法》第三百三十六条第一款) with the "情节严重" circumstances of
# 《最高人民法院关于审理非法行医刑事案件具体应用法律若干问题的解释》(2016年修正) Art. 2.
PRACTICE_BASES = [{"law": "《中华人民共和国医师法》", "article": "第五十九条"},
                  {"law": "《中华人民共和国基本医疗卫生与健康促进法》", "article": "第九十九条"}]

CRIME_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {
        "id": "WJJ-CRIME-330-INFECTED",
        "bases": WATER_BASES,
        "measure": "class_a_infections",
        "threshold": 1,
        "unit": "人",
        "law": "《中华人民共和国刑法》第三百三十条",
        "name": "妨害传染病防治罪（饮用水不符合卫生标准，引起甲类或者按甲类管理的传染病传播）",
    },
    {
        "id": "WJJ-CRIME-330-RISK",
        "bases": WATER_BASES,
        "measure": "serious_spread_risk_reports",
        "threshold": 1,
        "unit": "份",
        "law": "《中华人民共和国刑法》第三百三十条",
        "name": "妨害传染病防治罪（经疾病预防控制机构认定有传播严重危险）",
    },
    {
        "id": "WJJ-CRIME-336-INJURY",
        "bases": PRACTICE_BASES,
        "measure": "patients_injured",
        "threshold": 1,
        "unit": "人",
        "law": "《中华人民共和国刑法》第三百三十六条",
        "name": "非法行医罪（造成就诊人轻度残疾、器官组织损伤导致一般功能障碍）",
    },
    {
        "id": "WJJ-CRIME-336-FAKE-DRUGS",
        "bases": PRACTICE_BASES,
        "measure": "fake_drug_or_device_reports",
        "threshold": 1,
        "unit": "份",
        "law": "《中华人民共和国刑法》第三百三十六条",
        "name": "非法行医罪（使用假药、劣药或者不符合国家规定标准的卫生材料、医疗器械，足以严重危害人体健康）",
    },
)

# -- documents ----------------------------------------------------------------------------------
# 《卫生行政执法文书规范》: 文号 = 地区简称 + 卫 + 案件类别 (医、公、职、放、水 …) + 罚/改等字 + 〔年份〕 + 序号.
# The hook sees the document's subject: a document whose fields name its case's category
# (`case_category`, one of CASE_CATEGORIES) is numbered in that category's series (卫公罚 beside
# 卫医罚, each its own sequence); without it the department's usual category CASE_CATEGORY.
CASE_CATEGORY = "医"
CASE_CATEGORIES = {"医": "医疗卫生", "公": "公共场所卫生", "职": "职业卫生", "放": "放射卫生", "水": "生活饮用水卫生"}
KIND_CODES = {
    "filing_approval": "立", "penalty_notice": "罚告", "penalty_hearing_notice": "听告", "penalty_decision": "罚",
    "service_receipt": "送", "handover_letter": "移", "inspection_notice": "检", "hearing_notice": "听通",
}
OWN_KIND_CODES = {"health_supervision_opinion": "卫监意"}   # 卫生监督意见书: no case category

TEMPLATES: dict[str, dict[str, str]] = {
    "health_supervision_opinion": {
        "title": "卫生监督意见书",
        "body": (
            "{agency_name}\n卫生监督意见书\n{doc_number}\n\n"
            "被监督单位（个人）：{party_name}\n"
            "地址：{party_address}\n"
            "    本机关卫生监督员于{inspected_on}依法对你单位进行了卫生监督检查，发现存在以下问题：{problems}\n"
            "    上述情况不符合{violated_provision}的规定。依据{legal_basis}的规定，提出如下卫生监督意见：{opinion}\n"
            "    请于{correct_by}前改正，并将改正情况书面报告本机关。逾期不改正的，本机关将依法处理。\n"
            "    卫生监督员：{officers}"
            "\n\n{agency_name}（印章）\n{issued_on}\n"
        ),
    },
}


def applies_to(dept: str) -> bool:
    return dept.endswith(DEPT_SUFFIXES)


def _cites(bases: Any, basis: dict[str, str]) -> bool:
    """Whether an item's (law, article) pairs cite `basis` (an article covers its own 款/项)."""
    for law, article in bases or ():
        if law == basis["law"] and article.startswith(basis["article"]):
            rest = article[len(basis["article"]):]
            if not rest or rest.startswith("第"):
                return True
    return False


def _item(facts, dept: str, code: str, at):
    source = getattr(facts, "items", None)
    if source is None or not code:
        return None
    return source(dept, code, at) if callable(source) else source.get(code)


def _aware(value: Any):
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


def check_public_place_range(case, facts, settings, as_of) -> list:
    """公共场所无证营业 (Art. 35(1)): the fine must lie in the range the circumstances call for.

    Applies to a decided case whose item cites 《公共场所卫生管理条例实施细则》第三十五条 (from
    `facts.items`, the registry as the penalty service sees it). Aggravating circumstances: the
    case's measure `unlicensed_operation_days` >= 90, the measure `forged_licence` >= 1, or another
    non-revoked decision of a health department (`-wjj`/`-wsjk`) against the same party in the two
    years before (`facts.other_decisions`). With one of them a fine below 5,000 yuan is a finding
    (the aggravated range is 5,000–30,000); without any, a fine above 5,000 yuan is a finding. An
    unknown item (no registry facts) leaves the rule silent.
    """
    from datetime import timedelta

    from services.common.findings import Finding  # the suite's documented domain type

    decisions = [d for d in getattr(case, "decisions", ()) or () if not getattr(d, "revoked", False)]
    if not decisions:
        return []
    decision = decisions[-1]
    item = _item(facts, case.dept, getattr(decision, "item_code", "") or getattr(case, "item_code", ""), decision.at)
    if item is None or not _cites(getattr(item, "bases", ()), PUBLIC_PLACE_BASIS):
        return []
    fine = float(decision.fine_amount or 0)
    measures = getattr(case, "measures", None) or {}
    reasons = []
    if float(measures.get(MEASURE_UNLICENSED_DAYS, 0)) >= PUBLIC_PLACE_AGGRAVATING_DAYS:
        reasons.append(f"擅自营业{measures[MEASURE_UNLICENSED_DAYS]:g}日（三个月以上）")
    if float(measures.get(MEASURE_FORGED_LICENCE, 0)) >= 1:
        reasons.append("以涂改、转让、倒卖、伪造的卫生许可证擅自营业")
    party_id = (getattr(case, "party", None) or {}).get("id")
    since = decision.at - timedelta(days=PRIOR_PENALTY_WINDOW_DAYS)
    for other in getattr(facts, "other_decisions", ()) or ():
        at = other.get("decided_at")
        if (party_id and other.get("party_id") == party_id and other.get("case_id") != case.case_id
                and applies_to(other.get("dept") or "") and not other.get("revoked") and at is not None
                and since <= _aware(at) < decision.at):
            reasons.append(f"曾受过卫生行政部门处罚（{other.get('decision_no') or other.get('case_id')}）")
            break
    low, high = PUBLIC_PLACE_AGGRAVATED_RANGE if reasons else PUBLIC_PLACE_BASE_RANGE
    if reasons and fine < low:
        message = (f"当事人存在从重情形（{'；'.join(reasons)}），依《公共场所卫生管理条例实施细则》第三十五条第一款"
                   f"应处{low:g}元以上{high:g}元以下罚款，实际罚款{fine:g}元")
    elif not reasons and fine > high:
        message = (f"未记录《公共场所卫生管理条例实施细则》第三十五条第一款所列从重情形，罚款上限为{high:g}元，"
                   f"实际罚款{fine:g}元")
    else:
        return []
    return [Finding(RULE_PUBLIC_PLACE_RANGE, "warning", case.dept, "case", case.case_id, as_of,
                    evidence={"fine_amount": fine, "range": [low, high], "aggravating": reasons},
                    message=message)]


check_public_place_range.waits_for_arrivals = False  # (plugins/hookspecs.py, zhifa_case_rules)


@hookimpl
def zhifa_dept_settings(dept):
    return {"penalty": dict(PENALTY_SETTINGS)} if applies_to(dept) else None


@hookimpl
def zhifa_crime_thresholds(dept):
    if not applies_to(dept):
        return []
    return [{**t, "bases": [dict(b) for b in t["bases"]]} for t in CRIME_THRESHOLDS]


@hookimpl
def zhifa_case_rules(dept):
    return [(RULE_PUBLIC_PLACE_RANGE, check_public_place_range)] if applies_to(dept) else []


@hookimpl
def zhifa_document_templates():
    return {kind: dict(t) for kind, t in TEMPLATES.items()}


@hookimpl
def zhifa_document_files(dept):
    if not applies_to(dept):
        return None
    return {path.stem: str(path) for path in sorted(TEMPLATES_DIR.glob("*.docx"))}


def case_category(subject) -> str:
    """The case category (案件类别) a document's fields name, else the department's usual one."""
    given = str(((subject or {}).get("facts") or {}).get("case_category") or "").strip()
    return given if given in CASE_CATEGORIES else CASE_CATEGORY


@hookimpl
def zhifa_document_number_prefix(dept, kind, subject):
    if not applies_to(dept):
        return None
    if kind in OWN_KIND_CODES:
        return OWN_KIND_CODES[kind]
    code = KIND_CODES.get(kind)
    return f"卫{case_category(subject)}{code}" if code else None
