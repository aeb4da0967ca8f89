"""Departments' monthly reports (月报) submitted by the 10th of the next month (seed 001).

One aggregate per reporting month ("2024-05"): the bureau opens the month (the service does it by
itself once the month has ended, with the configured roster `reporting_depts`), departments report
their submission. Rule COO-REPORT-MISSING (warning): a department of the roster — or one that has
ever submitted for the month — has not submitted by day `monthly_report_day` of the next month.
A late submission clears the finding and is kept as late.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable

from services.common.chinatime import aware, day_start, local_date
from services.common.errors import IllegalTransitionError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau
from services.coordination.domain.common import bureau_only, command_fact, in_time_order, on_or_today, parse_date
from services.coordination.domain.reports import month_bounds
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

OPENED, SUBMITTED = "monthly_report.opened", "monthly_report.submitted"
FACT_TYPES = (OPENED, SUBMITTED)
RULE_MISSING = "COO-REPORT-MISSING"
RULES = (RULE_MISSING,)


@dataclass
class ReportMonth:
    month: str
    roster: list[str] = field(default_factory=list)
    submitted: dict[str, date] = field(default_factory=dict)

    @property
    def expected(self) -> list[str]:
        return sorted(set(self.roster) | set(self.submitted))


def due(month: str, s: CoordinationSettings = DEFAULT_SETTINGS) -> date:
    """The last day for the report of `month`: day `monthly_report_day` of the next month."""
    _, end = month_bounds(month)
    return end.replace(day=s.monthly_report_day)


def month_from_facts(facts: Iterable[Fact]) -> ReportMonth | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    m = ReportMonth(str(ordered[0].payload.get("month")))
    for f in ordered:
        if f.type == OPENED:
            m.roster = sorted(set(m.roster) | set(f.payload.get("roster") or []))
        elif f.type == SUBMITTED and f.dept not in m.submitted:
            m.submitted[f.dept] = parse_date(f.payload["submitted_on"], "submitted_on")
    return m


def evaluate(m: ReportMonth | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> list[Finding]:
    if m is None:
        return []
    last = due(m.month, s)
    today = local_date(aware(as_of, "as_of"))
    if today <= last:
        return []
    return [Finding(RULE_MISSING, "warning", dept, "monthly_report", f"{m.month}:{dept}", as_of,
                    {"month": m.month, "due": last.isoformat(), "days_overdue": (today - last).days},
                    f"{dept} 未在 {last.isoformat()} 前报送 {m.month} 行政执法工作月报")
            for dept in m.expected if dept not in m.submitted]


def next_due(m: ReportMonth | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    if m is None or all(d in m.submitted for d in m.expected):
        return None
    last = due(m.month, s)
    return day_start(last + timedelta(days=1)) if local_date(aware(as_of, "as_of")) <= last else None


def snapshot(m: ReportMonth, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    last = due(m.month, s)
    return {"month": m.month, "due": last.isoformat(), "depts": m.expected,
            "submitted": {d: on.isoformat() for d, on in sorted(m.submitted.items())},
            "late": sorted(d for d, on in m.submitted.items() if on > last),
            "missing": [d for d in m.expected if d not in m.submitted]}


def open_month(m: ReportMonth | None, month: str, *, roster: Iterable[str], at: datetime, dept: str,
               event_id: str) -> Fact:
    """The bureau (or the service on its behalf) opens a month's reporting with the roster."""
    bureau_only(dept, "发起月报报送")
    month_bounds(month)
    if m is not None and m.roster:
        raise IllegalTransitionError(f"{month} 月报报送已发起", field="month")
    return command_fact(OPENED, "month", month, at, dept, event_id, None,
                        roster=sorted({d for d in roster if d and not is_justice_bureau(d)}))


def submit(m: ReportMonth | None, month: str, *, at: datetime, dept: str, event_id: str,
           submitted_on: str | None = None, actor: str | None = None) -> Fact:
    """A department reports that it submitted its monthly report (once per month)."""
    start, _ = month_bounds(month)
    on = on_or_today(submitted_on, at, "submitted_on")
    if on < start:
        raise IllegalTransitionError(f"{month} 尚未开始，不能报送该月月报", field="month")
    if m is not None and dept in m.submitted:
        raise IllegalTransitionError(f"{dept} 已于 {m.submitted[dept].isoformat()} 报送 {month} 月报", field="month")
    return command_fact(SUBMITTED, "month", month, at, dept, event_id, actor, submitted_on=on.isoformat())


def admit(m: ReportMonth | None, fact: Fact) -> None:
    if fact.type == OPENED:
        bureau_only(fact.dept, "发起月报报送")
    elif m is not None and fact.dept in m.submitted:
        raise IllegalTransitionError(f"{fact.dept} 已报送 {m.month} 月报", field="payload.month")
