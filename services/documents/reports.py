"""Report documents (月报 / 季报): who may make which report, and the printed fields of its figures.

Pure: no I/O. The figures come from the coordination service's `monthly_report` / `quarterly_report`
(services/coordination/domain/reports.py); the documents service reads them at render time and
this module turns them into the fields of the DOCX template (services/documents/layout.py,
`build_report_template`).

- `monthly_report` (行政执法工作月报), subject `report`, subject id `YYYY-MM`: a department's report
  (owner: the department) or, made by the justice bureau (司法局), the county's with a row per department;
- `quarterly_report` (行政执法工作季报), subject id `YYYY-Qn`: the county's, only the justice bureau.
Rule `DOC-REPORT-OWNER`: a report belongs to the department it is about (the county's to the
justice bureau); a department cannot make the county's or the quarterly report — the API already
keeps a department user to its own department code, and passes the caller's role: the county's
reports are made by a supervisor (not by a department user of the bureau itself).
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Mapping

from services.common.errors import DomainError
from services.common.ownership import is_justice_bureau

MONTHLY, QUARTERLY = "monthly_report", "quarterly_report"
REPORT_KINDS = {MONTHLY: "行政执法工作月报", QUARTERLY: "行政执法工作季报"}
REPORT_SUBJECT = "report"
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
QUARTER_NAMES = {1: "一", 2: "二", 3: "三", 4: "四"}
NONE = "—"   # a figure that is unknown (source not answering) or cannot be computed (no inspections)
# the fields the service computes: a caller's facts may not set them
COUNTY_ROLE = "supervisor"   # who makes the county's reports through the API (auditors download them)
COMPUTED = frozenset({"report_title", "scope_name", "period_text", "summary", "rows", "dept_rows", "notes"})


def report_request(kind: str, subject_id: str, dept: str, today: date, role: str | None = None) -> dict:
    """DOC-REPORT-OWNER and the period: {"period", "county", "first_day"}; DomainError otherwise.
    `role` is the API caller's (None: another service): the county's reports are a supervisor's."""
    county = is_justice_bureau(dept)
    if county and role not in (None, COUNTY_ROLE):
        raise DomainError("全县月报、季报只能由司法局监督人员制作", code="forbidden", field="dept")
    if kind == MONTHLY:
        m = MONTH.fullmatch(subject_id)
        if not m:
            raise DomainError(f"月报的对象编号应为月份 YYYY-MM：{subject_id!r}", code="invalid_value", field="subject_id")
        first = date(int(m.group(1)), int(m.group(2)), 1)
    else:
        m = QUARTER.fullmatch(subject_id)
        if not m:
            raise DomainError(f"季报的对象编号应为季度 YYYY-Qn：{subject_id!r}", code="invalid_value", field="subject_id")
        if not county:
            raise DomainError("季报是全县的报告，只能由司法局制作", code="forbidden", field="dept")
        first = date(int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1, 1)
    if first > today:
        raise DomainError(f"{subject_id} 尚未开始，不能制作该期报告", code="invalid_value", field="subject_id")
    return {"period": subject_id, "county": county, "first_day": first}


def period_label(kind: str, period: str) -> str:
    """2026-10 -> 2026年10月; 2026-Q3 -> 2026年第三季度."""
    if kind == QUARTERLY:
        year, q = period.split("-Q")
        return f"{year}年第{QUARTER_NAMES[int(q)]}季度"
    year, month = period.split("-")
    return f"{year}年{int(month)}月"


def _day(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def _n(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _rate(value: Any) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


def _change(value: Any, rate: bool = False) -> str:
    if value is None:
        return NONE
    if rate:
        return f"{value * 100:+.1f}个百分点"
    if value == 0:
        return "持平"
    return ("+" if value > 0 else "-") + _n(abs(value))


# the headline table: (label, is a rate, the trend items (coordination's report) it adds up)
ROWS = (
    ("新立行政处罚案件（件）", False, ("penalty_filed",)),
    ("作出行政处罚决定（件）", False, ("penalty_decided",)),
    ("罚没款金额（元）", False, ("fines",)),
    ("行政处罚案件结案（件）", False, ("penalty_closed",)),
    ("行政检查（次）", False, ("inspections",)),
    ("其中联合检查（次）", False, ("inspections_joint",)),
    ("联合检查率", True, ("joint_rate",)),
    ("移送涉嫌犯罪案件（件）", False, ("handovers_transferred",)),
    ("提出移送报告（件）", False, ("handovers_raised",)),
    ("新增监督发现（条）", False, ("findings_raised",)),
    ("办结监督发现（条）", False, ("findings_resolved",)),
    ("期末未办结监督发现（条）", False, ("findings_open_at_end",)),
    ("新立监督案件（件）", False, ("supervision_opened",)),
    ("逾期答复、整改（次）", False, ("replies_late", "rectifications_late")),
    ("转办投诉举报（件）", False, ("complaints_routed",)),
    ("规范性文件备案（件）", False, ("normative_filed",)),
)
SOURCES = {"penalty_cases": "行政处罚案件", "inspections": "行政检查", "handovers": "移送涉嫌犯罪案件"}
HANDOVER_STATES = {"raised": "提出移送报告", "approved": "批准移送", "not_approved": "不批准移送",
                   "transferred": "移送公安机关", "received": "公安机关接收", "police_refused": "公安机关不予立案",
                   "police_opened": "公安机关立案", "criminal_case_opened": "立案侦查", "returned": "反向移送",
                   "penalty_case_opened": "恢复行政处罚"}


def _value(part: Mapping, key: str) -> Any:
    return None if part.get("unavailable") else part.get(key)


def _sum(values: list) -> Any:
    return None if any(v is None for v in values) else sum(values)


def _rows(block: Mapping) -> list[dict]:
    items = (block.get("trend") or {}).get("items") or {}
    out = []
    for label, rate, keys in ROWS:
        found = [items.get(k) or {"now": None, "before": None, "change": None} for k in keys]
        now, before, change = (_sum([f[x] for f in found]) for x in ("now", "before", "change"))
        show = _rate if rate else _n
        out.append({"label": label, "now": show(now), "before": show(before), "change": _change(change, rate)})
    return out


def _dept_row(block: Mapping, name: str) -> dict:
    part = {k: block.get(k) or {} for k in ("penalty_cases", "inspections", "handovers", "findings")}
    return {"dept": name, "filed": _n(_value(part["penalty_cases"], "filed")),
            "decided": _n(_value(part["penalty_cases"], "decided")),
            "inspections": _n(_value(part["inspections"], "inspections")),
            "joint_rate": _rate(_value(part["inspections"], "joint_rate")),
            "transferred": _n(_value(part["handovers"], "transferred")),
            "findings": _n(_value(part["findings"], "raised"))}


def _summary(block: Mapping, scope: str, label: str) -> str:
    p, i, h = block.get("penalty_cases") or {}, block.get("inspections") or {}, block.get("handovers") or {}
    f, s, c = block.get("findings") or {}, block.get("supervision") or {}, block.get("complaints") or {}
    parts = []
    if not p.get("unavailable"):
        parts.append(f"新立行政处罚案件{_n(p.get('filed'))}件，作出行政处罚决定{_n(p.get('decided'))}件，"
                     f"罚没款{_n(p.get('fines'))}元")
    if not i.get("unavailable"):
        rate = f"，联合检查率{_rate(i.get('joint_rate'))}" if i.get("joint_rate") is not None else ""
        parts.append(f"开展行政检查{_n(i.get('inspections'))}次，其中联合检查{_n(i.get('joint'))}次{rate}")
    if not h.get("unavailable"):
        states = "、".join(f"{HANDOVER_STATES.get(k, k)}{n}件" for k, n in (h.get("by_state") or {}).items())
        parts.append(f"移送涉嫌犯罪案件{_n(h.get('transferred'))}件" + (f"（本期各环节：{states}）" if states else ""))
    parts.append(f"新增监督发现{_n(f.get('raised'))}条，办结{_n(f.get('resolved'))}条，期末未办结{_n(f.get('open_at_end'))}条")
    parts.append(f"新立监督案件{_n(s.get('opened'))}件，转办投诉举报{_n(c.get('routed'))}件")
    return f"{label}，{scope}" + "；".join(parts) + "。"


def report_fields(kind: str, period: str, report: Mapping, *, scope_name: str,
                  dept_names: Mapping[str, str] | None = None) -> dict:
    """The template fields of a report from the coordination service's answer.

    `report` is `monthly_report(month, dept)` (a department's: one block) or a county report
    (`county` block + `departments` rows). `scope_name` names whom the report covers (the agency,
    or 全县)."""
    names = dict(dept_names or {})
    county = "county" in report
    block = report["county"] if county else report
    label = period_label(kind, period)
    rows_from = report.get("departments", []) if county else [report]
    dept_rows = [_dept_row(r, names.get(r.get("dept") or "", r.get("dept") or scope_name)) for r in rows_from]
    if county:
        dept_rows.append(_dept_row(block, "合计（全县）"))
    missing = [name for key, name in SOURCES.items() if (block.get(key) or {}).get("unavailable")]
    notes = ("数据由系统根据各部门报送的执法数据自动生成；表中无法计算或暂不可用的数据以短横线表示。"
             + (f"本期{'、'.join(missing)}数据暂不可用，未计入。" if missing else ""))
    previous = (block.get("trend") or {}).get("previous_months") or []
    if previous:
        before = period_label(kind, f"{previous[0][:4]}-Q{(int(previous[0][5:7]) - 1) // 3 + 1}") \
            if kind == QUARTERLY else period_label(kind, previous[0])
        notes += f"“上期”为{before}。"
    title_scope = "全县" if county else ""
    return {"report_title": f"{label}{title_scope}{REPORT_KINDS[kind]}", "scope_name": scope_name,
            "period_text": f"{_day(report['period']['from'])}至{_day(report['period']['to'])}",
            "summary": _summary(block, scope_name, label), "rows": _rows(block), "dept_rows": dept_rows,
            "notes": notes}
