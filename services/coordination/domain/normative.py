"""Normative documents (规范性文件) filed with the justice bureau within 30 days of issue (seed 000).

A department reports a document it issued, then its filing (备案); the bureau records the review
outcome (审查: 通过 / 纠正 / 撤销). Rule COO-NORM-FILING-LATE: not filed within
`normative_filing_days` calendar days of issue (seed 000: "自之日起30日内"); a late filing clears
the finding and stays recorded as `late`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from services.common.chinatime import aware, day_start, local_date
from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.coordination.domain.common import (bureau_only, command_fact, in_time_order, on_or_today, parse_date,
                                                 required_text)
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

ISSUED, FILED, REVIEWED = "normative_document.issued", "normative_document.filed", "normative_document.reviewed"
FACT_TYPES = (ISSUED, FILED, REVIEWED)
OUTCOMES = ("approved", "corrected", "revoked")   # 通过 / 责令纠正 / 撤销
RULE_FILING = "COO-NORM-FILING-LATE"
RULES = (RULE_FILING,)


@dataclass
class NormativeDocument:
    doc_id: str
    dept: str = ""
    title: str = ""
    doc_no: str = ""
    issued_on: date | None = None
    filed_on: date | None = None
    outcome: str | None = None
    reviewed_on: date | None = None
    comment: str | None = None

    @property
    def status(self) -> str:
        return "reviewed" if self.outcome else "filed" if self.filed_on else "issued" if self.issued_on else "unknown"


def filing_due(d: NormativeDocument, s: CoordinationSettings = DEFAULT_SETTINGS) -> date | None:
    return d.issued_on + timedelta(days=s.normative_filing_days) if d.issued_on else None


def document_from_facts(facts: Iterable[Fact]) -> NormativeDocument | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    d = NormativeDocument(str(ordered[0].payload.get("doc_id") or ""))
    for f in ordered:
        p = f.payload
        if f.type == ISSUED:
            d.dept, d.title, d.doc_no = f.dept, p["title"], p["doc_no"]
            d.issued_on = parse_date(p["issued_on"], "issued_on")
        elif f.type == FILED and f.dept == d.dept:
            d.filed_on = parse_date(p["filed_on"], "filed_on")
        elif f.type == REVIEWED:
            d.outcome, d.reviewed_on, d.comment = p["outcome"], parse_date(p["reviewed_on"], "reviewed_on"), p.get("comment")
    return d


def evaluate(d: NormativeDocument | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> list[Finding]:
    if d is None or not d.issued_on or d.filed_on:
        return []
    today, due = local_date(aware(as_of, "as_of")), filing_due(d, s)
    if today <= due:
        return []
    return [Finding(RULE_FILING, "warning", d.dept, "normative_document", d.doc_id, as_of,
                    {"doc_no": d.doc_no, "issued_on": d.issued_on.isoformat(), "filing_due": due.isoformat(),
                     "days_overdue": (today - due).days},
                    f"规范性文件《{d.title}》（{d.doc_no}）未在 {due.isoformat()} 前报县司法局备案")]


def next_due(d: NormativeDocument | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    if d is None or not d.issued_on or d.filed_on:
        return None
    due = filing_due(d, s)
    return day_start(due + timedelta(days=1)) if local_date(aware(as_of, "as_of")) <= due else None


def snapshot(d: NormativeDocument, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    due = filing_due(d, s)
    return {"doc_id": d.doc_id, "dept": d.dept, "title": d.title, "doc_no": d.doc_no, "status": d.status,
            "issued_on": d.issued_on.isoformat() if d.issued_on else None,
            "filing_due": due.isoformat() if due else None,
            "filed_on": d.filed_on.isoformat() if d.filed_on else None,
            "filed_late": bool(d.filed_on and due and d.filed_on > due),
            "outcome": d.outcome, "reviewed_on": d.reviewed_on.isoformat() if d.reviewed_on else None,
            "comment": d.comment}


def _fact(type_, doc_id, at, acting_dept, event_id, actor, **payload) -> Fact:
    return command_fact(type_, "doc_id", doc_id, at, acting_dept, event_id, actor, **payload)


def issue(d: NormativeDocument | None, doc_id: str, *, title: str, doc_no: str, at: datetime, dept: str,
          event_id: str, issued_on: str | None = None, actor: str | None = None) -> Fact:
    """A department records a normative document it issued."""
    if d is not None and d.issued_on:
        raise IllegalTransitionError(f"规范性文件 {doc_id} 已登记", field="doc_id")
    return _fact(ISSUED, doc_id, at, dept, event_id, actor, title=required_text(title, "title", "须填写文件名称"),
                 doc_no=required_text(doc_no, "doc_no", "须填写文号"),
                 issued_on=on_or_today(issued_on, at, "issued_on").isoformat())


def file(d: NormativeDocument | None, doc_id: str, *, at: datetime, dept: str, event_id: str,
         filed_on: str | None = None, actor: str | None = None) -> Fact:
    """备案 by the issuing department."""
    if d is None or not d.issued_on:
        raise NotFoundError(f"规范性文件 {doc_id} 不存在", field="doc_id")
    if d.dept != dept:
        raise NotOwnerError(f"规范性文件 {doc_id} 由 {d.dept} 制发，{dept} 不能代为备案")
    if d.filed_on:
        raise IllegalTransitionError(f"规范性文件 {doc_id} 已于 {d.filed_on.isoformat()} 备案", field="doc_id")
    on = on_or_today(filed_on, at, "filed_on")
    if on < d.issued_on:
        raise DomainError("备案日期不能早于制发日期", code="invalid_value", field="filed_on")
    return _fact(FILED, doc_id, at, dept, event_id, actor, filed_on=on.isoformat())


def review(d: NormativeDocument | None, doc_id: str, *, outcome: str, at: datetime, dept: str, event_id: str,
           comment: str | None = None, reviewed_on: str | None = None, actor: str | None = None) -> Fact:
    """审查 by the bureau, after filing."""
    bureau_only(dept, "审查规范性文件")
    if d is None or not d.filed_on:
        raise IllegalTransitionError(f"规范性文件 {doc_id} 尚未备案，不能审查", field="doc_id")
    if outcome not in OUTCOMES:
        raise DomainError(f"审查结论只能是：{'、'.join(OUTCOMES)}", code="invalid_value", field="outcome")
    if outcome != "approved":
        required_text(comment, "comment", "纠正或撤销须说明理由")
    return _fact(REVIEWED, doc_id, at, dept, event_id, actor, outcome=outcome, comment=comment,
                 reviewed_on=on_or_today(reviewed_on, at, "reviewed_on").isoformat())


def admit(d: NormativeDocument | None, fact: Fact) -> None:
    """Ingress: the issuing department records and files its document; the bureau reviews. A filing
    reported before its document arrived is kept (the fold ignores one from another department)."""
    doc_id = str(fact.payload.get("doc_id") or "")
    if fact.type == REVIEWED:
        bureau_only(fact.dept, "审查规范性文件")
    elif d is not None and d.issued_on and fact.dept != d.dept:
        raise NotOwnerError(f"规范性文件 {doc_id} 由 {d.dept} 制发，{fact.dept} 无权报告", field="dept")
