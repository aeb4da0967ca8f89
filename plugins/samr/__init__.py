"""市场监管 (market regulation) department plugin: departments whose code ends in '-scjg'.

Numbers come from 《市场监督管理行政处罚程序规定》: a lead is checked and the case filed within
15 working days of discovery, +15 with the head's approval (Art. 18); a decision is made within
90 days of filing, +30 with approval (Art. 64). Crime thresholds follow 《刑法》 and the
prosecution standards (立案追诉标准) for the offences this department most often hands over.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from plugins.hookspecs import hookimpl
from services.common.findings import Finding
from services.common.workdays import DEFAULT_CALENDAR, WorkdayCalendar

DEPT_SUFFIX = "-scjg"
RULE_FILING_LATE = "PEN-SAMR-FILING-LATE"

# The administrative legal basis whose facts can reach the crime: a threshold applies to every item
# citing it (services/common/crime.py), whatever code a county gives the item.
PQL_49 = {"law": "《中华人民共和国产品质量法》", "article": "第四十九条"}   # 生产、销售不符合标准的产品
PQL_50 = {"law": "《中华人民共和国产品质量法》", "article": "第五十条"}     # 掺杂掺假、以假充真、以次充好
FSL_123 = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十三条"}
FSL_124 = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条"}
TML_60 = {"law": "《中华人民共和国商标法》", "article": "第六十条"}        # 侵犯注册商标专用权

CRIME_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {
        "id": "SAMR-CRIME-140-SALES",
        "bases": [PQL_49, PQL_50],
        "measure": "sales_amount",
        "threshold": 50_000,
        "unit": "元",
        "law": "《中华人民共和国刑法》第一百四十条",
        "name": "生产、销售伪劣产品罪（销售金额五万元以上）",
    },
    {
        "id": "SAMR-CRIME-140-UNSOLD",
        "bases": [PQL_49, PQL_50],
        "measure": "unsold_goods_value",
        "threshold": 150_000,
        "unit": "元",
        "law": "《中华人民共和国刑法》第一百四十条",
        "name": "生产、销售伪劣产品罪（尚未销售，货值金额十五万元以上）",
    },
    {
        "id": "SAMR-CRIME-143-HAZARD",
        "bases": [FSL_123, FSL_124],
        "measure": "severe_hazard_reports",
        "threshold": 1,
        "unit": "份",
        "law": "《中华人民共和国刑法》第一百四十三条",
        "name": "生产、销售不符合安全标准的食品罪（检验认定足以造成严重食物中毒事故或者其他严重食源性疾病）",
    },
    {
        "id": "SAMR-CRIME-140-FOOD-SALES",
        "bases": [FSL_123, FSL_124],
        "measure": "sales_amount",
        "threshold": 50_000,
        "unit": "元",
        "law": "《中华人民共和国刑法》第一百四十九条、第一百四十条",
        "name": "生产、销售伪劣产品罪（不符合安全标准的食品，销售金额五万元以上）",
    },
    {
        "id": "SAMR-CRIME-213-BUSINESS",
        "bases": [TML_60],
        "measure": "illegal_business_amount",
        "threshold": 50_000,
        "unit": "元",
        "law": "《中华人民共和国刑法》第二百一十三条",
        "name": "假冒注册商标罪（非法经营数额五万元以上）",
    },
    {
        "id": "SAMR-CRIME-213-GAINS",
        "bases": [TML_60],
        "measure": "illegal_gains",
        "threshold": 30_000,
        "unit": "元",
        "law": "《中华人民共和国刑法》第二百一十三条",
        "name": "假冒注册商标罪（违法所得数额三万元以上）",
    },
)


def applies_to(dept: str) -> bool:
    return dept.endswith(DEPT_SUFFIX)


def _local_day(value: date | datetime, tz: timezone) -> date:
    """The calendar day where the limit is reckoned; aware datetimes are converted to `tz` first."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.date()
    return value


def check_filing_late(case, facts, settings, as_of: datetime, *, calendar: WorkdayCalendar | None = None) -> list[Finding]:
    """及时立案: a case filed (or still unfiled at `as_of`) later than the filing limit is a finding.

    Works on any case-like object with these attributes, so it does not depend on the penalty
    domain's classes: `case_id` and `dept` (str); `discovered_at` (date or datetime the lead was
    found or the material received; None means the rule cannot judge); `filed_at` (date or
    datetime, None while not filed); `filing_extension_approved` (bool, optional, default False).
    The limit is `settings.filing_wd` working days after discovery (discovery day not counted),
    plus `settings.filing_extension_wd` when the extension was approved; working days follow
    China's holiday calendar (`calendar`, default `DEFAULT_CALENDAR`); aware datetimes are read
    in `settings.utc_offset_hours` (China time), naive ones as they are. `facts` is unused.
    """
    if settings.filing_wd is None:
        return []
    discovered_at = getattr(case, "discovered_at", None)
    if discovered_at is None:
        return []
    calendar = calendar or DEFAULT_CALENDAR
    tz = timezone(timedelta(hours=settings.utc_offset_hours))
    extended = bool(getattr(case, "filing_extension_approved", False))
    allowed_wd = settings.filing_wd + (settings.filing_extension_wd if extended else 0)
    discovered_on = _local_day(discovered_at, tz)
    deadline = calendar.add_workdays(discovered_on, allowed_wd)

    filed_at = getattr(case, "filed_at", None)
    if filed_at is not None:
        filed_on = _local_day(filed_at, tz)
        if filed_on <= deadline:
            return []
        message = (
            f"案件于{filed_on.isoformat()}立案，超过发现线索后{allowed_wd}个工作日的立案期限"
            f"（截止{deadline.isoformat()}），未及时立案。"
        )
    else:
        filed_on = None
        if _local_day(as_of, tz) <= deadline:
            return []
        message = (
            f"案件线索于{discovered_on.isoformat()}发现，至今未立案，已超过{allowed_wd}个工作日的立案期限"
            f"（截止{deadline.isoformat()}）。"
        )
    return [
        Finding(
            rule_id=RULE_FILING_LATE,
            severity="warning",
            dept=case.dept,
            subject_type="case",
            subject_id=case.case_id,
            as_of=as_of,
            evidence={
                "discovered_on": discovered_on.isoformat(),
                "filed_on": filed_on.isoformat() if filed_on else None,
                "deadline": deadline.isoformat(),
                "allowed_wd": allowed_wd,
                "extension_approved": extended,
            },
            message=message,
        )
    ]


check_filing_late.waits_for_arrivals = False  # (plugins/hookspecs.py, zhifa_case_rules)


@hookimpl
def zhifa_dept_settings(dept):
    if not applies_to(dept):
        return None
    return {"penalty": {"decision_extension_days": 30, "filing_wd": 15, "filing_extension_wd": 15}}


@hookimpl
def zhifa_crime_thresholds(dept):
    if not applies_to(dept):
        return []
    return [{**t, "bases": [dict(b) for b in t["bases"]]} for t in CRIME_THRESHOLDS]


@hookimpl
def zhifa_case_rules(dept):
    if not applies_to(dept):
        return []
    return [(RULE_FILING_LATE, check_filing_late)]


@hookimpl
def zhifa_payload_extensions():
    # The head's approval to extend the filing limit (Art. 18), read by PEN-SAMR-FILING-LATE.
    return {
        "case.filed": {
            "filing_extension_approved": {"type": "boolean", "required": False, "nullable": True},
        },
    }


# 文号 code of each document kind in 市场监管 practice (营市监罚〔2025〕15号, 营市监立〔2025〕3号 …)
DOCUMENT_CODES = {
    "filing_approval": "市监立", "penalty_notice": "市监罚告", "penalty_hearing_notice": "市监听告",
    "penalty_decision": "市监罚", "service_receipt": "市监送", "handover_letter": "市监移",
    "inspection_notice": "市监检",
}


@hookimpl
def zhifa_document_number_prefix(dept, kind):
    if not applies_to(dept):
        return None
    return DOCUMENT_CODES.get(kind)
