"""交通运输 (transport) department plugin for Zhifa: departments whose code ends in `-jtj` or `-jtys`
(交通运输局 / 交通运输综合行政执法, 运政) and `-glj` (公路管理机构, 路政).

A separate distribution (plugins/jtj/pyproject.toml) discovered through the entry point
`zhifa.plugins: jtj`. It marks its hooks with its own pluggy marker for the project "zhifa" and
imports nothing of the suite at import time (its rule builds the documented `Finding` when it runs).
Sources and the choices made where they are silent: plugins/jtj/README.md.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("zhifa")

TRANSPORT_SUFFIXES = ("-jtj", "-jtys")   # 运政: 文号 交运…
ROAD_SUFFIXES = ("-glj",)                # 路政: 文号 交路…
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# -- numbers ------------------------------------------------------------------------------------
# The department's procedural limits are the national ones (README), so it adds no settings.

# 《超限运输车辆行驶公路管理规定》(交通运输部令2016年第62号) Art. 43(1)(4), under 《公路安全保护条例》
# Art. 64 (at most 30,000 yuan): a vehicle over the total-mass limit by no more than 1,000 kg gets a
# warning; above that, at most 500 yuan for each 1,000 kg over, never more than 30,000 yuan.
OVERLOAD_WARNING_KG = 1_000
OVERLOAD_FINE_PER_TONNE = 500.0
OVERLOAD_FINE_CAP = 30_000.0
MEASURE_OVERWEIGHT_KG = "overweight_kg"   # 超限质量（千克）, recorded on the case
RULE_OVERLOAD_FINE = "PEN-JTJ-OVERLOAD-FINE"

# -- crime thresholds, keyed by the administrative legal basis that can reach the crime -----------
# 危险驾驶罪 (《刑法》第一百三十三条之一第一款第（四）项: 违反危险化学品安全管理规定运输危险化学品，危及
# 公共安全): the transport department's bases are 《危险化学品安全管理条例》Art. 86 (unqualified crew, no
# protective measures) and Art. 87 (carriers without the dangerous-goods permit …); "危及公共安全" is
# measured as a written finding (认定) of the danger in the case file.
HAZCHEM_BASES = [{"law": "《危险化学品安全管理条例》", "article": "第八十六条"},
                 {"law": "《危险化学品安全管理条例》", "article": "第八十七条"}]

CRIME_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {
        "id": "JTJ-CRIME-133-1-HAZCHEM",
        "bases": HAZCHEM_BASES,
        "measure": "public_safety_endangered_reports",
        "threshold": 1,
        "unit": "份",
        "law": "《中华人民共和国刑法》第一百三十三条之一",
        "name": "危险驾驶罪（违反危险化学品安全管理规定运输危险化学品，危及公共安全）",
    },
)

# -- documents ----------------------------------------------------------------------------------
KIND_CODES = {
    "filing_approval": "立", "penalty_notice": "罚告", "penalty_hearing_notice": "听告", "penalty_decision": "罚",
    "service_receipt": "送", "handover_letter": "移", "inspection_notice": "检", "hearing_notice": "听通",
    "correction_order": "改",
}

TEMPLATES: dict[str, dict[str, str]] = {
    "correction_order": {
        "title": "责令改正违法行为通知书",
        "body": (
            "{agency_name}\n责令改正违法行为通知书\n{doc_number}\n\n"
            "{party_name}：\n"
            "    经调查，你（单位）于{occurred_on}在{location}实施了{violation}的行为，"
            "违反了{violated_provision}的规定。\n"
            "    依据{legal_basis}的规定，现责令你（单位）：{correction}\n"
            "    请于{correct_by}前改正。逾期不改正的，本机关将依法处理。\n"
            "    如不服本通知，可以自收到本通知书之日起六十日内向{reconsideration_body}申请行政复议，"
            "或者自收到本通知书之日起六个月内依法向{court}提起行政诉讼。"
            "\n\n{agency_name}（印章）\n{issued_on}\n"
        ),
    },
}


def applies_to(dept: str) -> bool:
    return dept.endswith(TRANSPORT_SUFFIXES + ROAD_SUFFIXES)


def overload_fine_limit(overweight_kg: float) -> float:
    """The most a 超限 fine may be: 0 (a warning only) up to 1,000 kg over, then 500 yuan for each
    started 1,000 kg, capped at 30,000 yuan (README: a started tonne counts)."""
    if overweight_kg <= OVERLOAD_WARNING_KG:
        return 0.0
    return min(OVERLOAD_FINE_CAP, OVERLOAD_FINE_PER_TONNE * math.ceil(overweight_kg / 1_000))


def check_overload_fine(case, facts, settings, as_of) -> list:
    """超限运输: the fine may not exceed what Art. 43(1)(4) allows for the mass over the limit.

    Reads the case's measure `overweight_kg` (超限质量, kilograms over the total-mass limit; a case
    without it is not judged) and its current, non-revoked decision (`fine_amount`, `kinds`).
    """
    from services.common.findings import Finding  # the suite's documented domain type

    measures = getattr(case, "measures", None) or {}
    decisions = [d for d in getattr(case, "decisions", ()) or () if not getattr(d, "revoked", False)]
    if MEASURE_OVERWEIGHT_KG not in measures or not decisions:
        return []
    over = float(measures[MEASURE_OVERWEIGHT_KG])
    fine = float(decisions[-1].fine_amount or 0)
    limit = overload_fine_limit(over)
    if fine <= limit:
        return []
    if limit == 0:
        message = (f"车货总质量超限{over:g}千克，未超过{OVERLOAD_WARNING_KG}千克，依《超限运输车辆行驶公路管理规定》"
                   f"第四十三条应予警告，却罚款{fine:g}元")
    else:
        message = (f"车货总质量超限{over:g}千克，依《超限运输车辆行驶公路管理规定》第四十三条罚款不得超过"
                   f"{limit:g}元（每超1000千克罚款{OVERLOAD_FINE_PER_TONNE:g}元，最高{OVERLOAD_FINE_CAP:g}元），"
                   f"实际罚款{fine:g}元")
    return [Finding(RULE_OVERLOAD_FINE, "warning", case.dept, "case", case.case_id, as_of,
                    evidence={"overweight_kg": over, "fine_amount": fine, "limit": limit}, message=message)]


check_overload_fine.waits_for_arrivals = False  # (plugins/hookspecs.py, zhifa_case_rules)


@hookimpl
def zhifa_crime_thresholds(dept):
    if not applies_to(dept):
        return []
    return [{**t, "bases": [dict(b) for b in t["bases"]]} for t in CRIME_THRESHOLDS]


@hookimpl
def zhifa_case_rules(dept):
    return [(RULE_OVERLOAD_FINE, check_overload_fine)] if applies_to(dept) else []


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
    if not applies_to(dept) or kind not in KIND_CODES:
        return None
    return ("交路" if dept.endswith(ROAD_SUFFIXES) else "交运") + KIND_CODES[kind]
