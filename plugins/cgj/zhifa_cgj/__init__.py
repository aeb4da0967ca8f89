"""城管 综合行政执法 (comprehensive urban administrative enforcement) department plugin for Zhifa.

Departments whose code ends in `-cgj` or `-zhzf`. A separate distribution (plugins/cgj/pyproject.toml)
discovered through the entry point `zhifa.plugins: cgj`; it marks its hooks with its own pluggy
marker for the project "zhifa", so it needs nothing of the suite to be imported.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("zhifa")

DEPT_SUFFIXES = ("-cgj", "-zhzf")
RULE_FIRST_VIOLATION_FINED = "PEN-CGJ-FIRST-VIOLATION-FINED"
FIRST_VIOLATION_WINDOW_DAYS = 365
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# 首违不罚清单 (《行政处罚法》第三十三条第一款: 初次违法且危害后果轻微并及时改正的，可以不予行政处罚):
# act code -> (the act, the conditions under which no penalty is imposed)
FIRST_VIOLATION_LIST: dict[str, tuple[str, str]] = {
    "ROAD-OCCUPIED": ("擅自占用城市道路经营", "首次被发现，占道面积较小、未影响通行，经责令后立即改正"),
    "RESTAURANT-FUMES": ("餐饮服务业经营者未正常使用油烟净化设施", "首次被发现，未造成投诉或明显污染，限期内改正"),
    "HOUSEHOLD-WASTE-DUMPING": ("随意倾倒城市生活垃圾", "首次被发现，数量较少，当场清除"),
    "CONSTRUCTION-DUST": ("施工工地未采取有效防尘降尘措施", "首次被发现，未造成扬尘污染后果，立即采取措施"),
}

# 文号 code of each document kind (营综执罚〔2025〕3号)
DOCUMENT_CODES = {
    "filing_approval": "综执立", "penalty_notice": "综执罚告", "penalty_hearing_notice": "综执听告",
    "penalty_decision": "综执罚", "no_penalty_decision": "综执不罚", "service_receipt": "综执送",
    "handover_letter": "综执移", "inspection_notice": "综执检",
}

TEMPLATES: dict[str, dict[str, str]] = {
    "no_penalty_decision": {
        "title": "不予行政处罚决定书",
        "body": (
            "{agency_name}\n不予行政处罚决定书\n{doc_number}\n\n"
            "当事人：{party_name}\n"
            "统一社会信用代码（身份证件号码）：{party_id}\n"
            "住所（住址）：{party_address}\n"
            "    本机关于{filed_on}对当事人{cause}一案立案调查。经查明：{facts}\n"
            "    以上事实有{evidence}等证据为证。\n"
            "    当事人的上述行为违反了{violated_provision}的规定，属于本机关公布的首违不罚清单所列情形，"
            "系初次违法，危害后果轻微，并已于{corrected_on}改正。依据《中华人民共和国行政处罚法》第三十三条第一款的规定，"
            "本机关决定不予行政处罚，并对当事人进行教育：{education}。\n"
            "    当事人如不服本决定，可以自收到本决定书之日起六十日内向{reconsideration_body}申请行政复议，"
            "或者自收到本决定书之日起六个月内依法向{court}提起行政诉讼。"
            "\n\n{agency_name}（印章）\n{issued_on}\n"
        ),
    },
}


def applies_to(dept: str) -> bool:
    return dept.endswith(DEPT_SUFFIXES)


def check_first_violation_fined(case, facts, settings, as_of) -> list:
    """A fine for an act on the 首违不罚 list although the party has no earlier decision for that act.

    Reads the documented case attributes: `case_id`, `dept`, `act_code`, `party` ({"id"}), and
    `decisions` (each with `at`, `kinds`, `fine_amount`, `revoked`); `facts.other_decisions` are the
    party's decisions in other cases ({party_id, act_code, decided_at, revoked}).
    """
    from services.common.findings import Finding  # the suite's documented domain type

    decisions = [d for d in getattr(case, "decisions", ()) or () if not getattr(d, "revoked", False)]
    act = getattr(case, "act_code", "")
    if not decisions or act not in FIRST_VIOLATION_LIST:
        return []
    decision = decisions[-1]
    if "fine" not in tuple(decision.kinds or ()) and not decision.fine_amount:
        return []
    party_id = (getattr(case, "party", None) or {}).get("id")
    window_start = decision.at - timedelta(days=FIRST_VIOLATION_WINDOW_DAYS)
    for other in getattr(facts, "other_decisions", ()) or ():
        decided_at = other.get("decided_at")
        if (other.get("party_id") == party_id and other.get("act_code") == act and not other.get("revoked")
                and decided_at is not None and window_start <= _aware(decided_at) < decision.at):
            return []  # not the first violation
    name, conditions = FIRST_VIOLATION_LIST[act]
    return [Finding(RULE_FIRST_VIOLATION_FINED, "warning", case.dept, "case", case.case_id, as_of,
                    evidence={"act_code": act, "fine_amount": decision.fine_amount, "conditions": conditions},
                    message=f"“{name}”在首违不罚清单内，当事人{FIRST_VIOLATION_WINDOW_DAYS}日内无同类处罚却被罚款"
                            f"{decision.fine_amount:g}元：请核查是否{conditions}（《行政处罚法》第三十三条）")]


check_first_violation_fined.waits_for_arrivals = False  # (plugins/hookspecs.py, zhifa_case_rules)


def _aware(value: Any):
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


@hookimpl
def zhifa_case_rules(dept):
    return [(RULE_FIRST_VIOLATION_FINED, check_first_violation_fined)] if applies_to(dept) else []


@hookimpl
def zhifa_document_templates():
    return {kind: dict(t) for kind, t in TEMPLATES.items()}


@hookimpl
def zhifa_document_files(dept):
    if not applies_to(dept):
        return None
    return {path.stem: str(path) for path in sorted(TEMPLATES_DIR.glob("*.docx"))}


@hookimpl
def zhifa_document_number_prefix(dept, kind):
    return DOCUMENT_CODES.get(kind) if applies_to(dept) else None
