"""Complaints and reports (投诉举报, 12345 hotline): intake, routing, acknowledgement, answer, feedback.

A complaint is received (from the hotline's system through the ingress, or entered at the console
by the bureau), routed by the bureau to the department concerned, acknowledged (受理) and answered
(答复) by that department, and the complainant's feedback (满意/不满意) recorded by the bureau.

Rules (findings of the department that owes the step, while it is outstanding):
- COO-CPL-ROUTE-OVERDUE: not routed within `complaint_route_days` of receipt (the bureau's own
  step: the finding belongs to the justice bureau's department code of the receiving fact);
- COO-CPL-ACK-OVERDUE: routed but not acknowledged within `complaint_ack_days`;
- COO-CPL-ANSWER-OVERDUE: not answered within `complaint_answer_days` of routing.
A late step clears the finding and is kept in `late`. Repeated complaints about the same party or
officer are a *signal* computed over the complaints (`repeated_signals`, pure), not a rule of one
complaint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable

from services.common.chinatime import aware, day_start, local_date
from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau
from services.coordination.domain.common import (bureau_only, command_fact, in_time_order, on_or_today, parse_date,
                                                 required_text)
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

RECEIVED, ROUTED, ACKNOWLEDGED, ANSWERED, FEEDBACK = (
    "complaint.received", "complaint.routed", "complaint.acknowledged", "complaint.answered", "complaint.feedback")
FACT_TYPES = (RECEIVED, ROUTED, ACKNOWLEDGED, ANSWERED, FEEDBACK)
CHANNELS = ("hotline_12345", "console", "letter", "online", "visit")
RULE_ROUTE, RULE_ACK, RULE_ANSWER = "COO-CPL-ROUTE-OVERDUE", "COO-CPL-ACK-OVERDUE", "COO-CPL-ANSWER-OVERDUE"
RULES = (RULE_ROUTE, RULE_ACK, RULE_ANSWER)


@dataclass
class Complaint:
    complaint_id: str
    received_by: str = ""               # the unit that took it in (hotline centre or the bureau)
    channel: str = ""
    received_on: date | None = None
    summary: str = ""
    complainant: dict = field(default_factory=dict)   # personal data: masked by the API
    party_id: str | None = None         # the party (当事人/企业) complained about
    officer_id: str | None = None       # the officer complained about
    dept: str | None = None             # routed to
    routed_on: date | None = None
    acknowledged_on: date | None = None
    answered_on: date | None = None
    answer: str | None = None
    satisfied: bool | None = None
    feedback_on: date | None = None
    late: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.feedback_on:
            return "closed"
        if self.answered_on:
            return "answered"
        if self.acknowledged_on:
            return "acknowledged"
        if self.routed_on:
            return "routed"
        return "received" if self.received_on else "unknown"


def due_dates(c: Complaint, s: CoordinationSettings = DEFAULT_SETTINGS) -> dict[str, date]:
    out = {}
    if c.received_on:
        out["route"] = s.add_days(c.received_on, s.complaint_route_days)
    if c.routed_on:
        out["ack"] = s.add_days(c.routed_on, s.complaint_ack_days)
        out["answer"] = s.add_days(c.routed_on, s.complaint_answer_days)
    return out


def _late(c: Complaint, what: str, due: date | None, on: date) -> None:
    if due is not None and on > due:
        c.late.append({"what": what, "due": due.isoformat(), "on": on.isoformat()})


def complaint_from_facts(facts: Iterable[Fact], s: CoordinationSettings = DEFAULT_SETTINGS) -> Complaint | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    c = Complaint(str(ordered[0].payload.get("complaint_id") or ""))
    for f in ordered:
        p = f.payload
        if f.type == RECEIVED:
            c.received_by, c.channel = f.dept, p["channel"]
            c.received_on = parse_date(p["received_on"], "received_on")
            c.summary, c.complainant = p.get("summary", ""), dict(p.get("complainant") or {})
            c.party_id, c.officer_id = p.get("party_id"), p.get("officer_id")
        elif f.type == ROUTED:
            on = parse_date(p["routed_on"], "routed_on")
            _late(c, "route", due_dates(c, s).get("route"), on)
            c.dept, c.routed_on = p["dept"], on
            c.acknowledged_on = c.answered_on = None
        elif f.type == ACKNOWLEDGED and c.routed_on and f.dept == c.dept:
            on = parse_date(p["acknowledged_on"], "acknowledged_on")
            _late(c, "ack", due_dates(c, s).get("ack"), on)
            c.acknowledged_on = on
        elif f.type == ANSWERED and c.routed_on and f.dept == c.dept:
            on = parse_date(p["answered_on"], "answered_on")
            _late(c, "answer", due_dates(c, s).get("answer"), on)
            c.answered_on, c.answer = on, p.get("answer")
            c.acknowledged_on = c.acknowledged_on or on
        elif f.type == FEEDBACK:
            c.satisfied, c.feedback_on = bool(p["satisfied"]), parse_date(p["feedback_on"], "feedback_on")
    return c


def evaluate(c: Complaint | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> list[Finding]:
    if c is None or not c.received_on or c.feedback_on:
        return []
    today = local_date(aware(as_of, "as_of"))
    due = due_dates(c, s)
    out = []

    def finding(rule: str, dept: str, step: str, message: str) -> Finding:
        return Finding(rule, "warning", dept, "complaint", c.complaint_id, as_of,
                       {"complaint_id": c.complaint_id, "channel": c.channel, f"{step}_due": due[step].isoformat(),
                        "days_overdue": (today - due[step]).days}, message)

    if not c.routed_on and today > due["route"]:
        out.append(finding(RULE_ROUTE, c.received_by, "route",
                           f"投诉举报 {c.complaint_id} 未在 {due['route'].isoformat()} 前转办"))
    if c.routed_on and not c.acknowledged_on and today > due["ack"]:
        out.append(finding(RULE_ACK, c.dept, "ack", f"{c.dept} 未在 {due['ack'].isoformat()} 前受理投诉举报 {c.complaint_id}"))
    if c.routed_on and not c.answered_on and today > due["answer"]:
        out.append(finding(RULE_ANSWER, c.dept, "answer",
                           f"{c.dept} 未在 {due['answer'].isoformat()} 前答复投诉举报 {c.complaint_id}"))
    return out


def next_due(c: Complaint | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    if c is None or not c.received_on or c.feedback_on:
        return None
    today = local_date(aware(as_of, "as_of"))
    due = due_dates(c, s)
    pending = [due["route"]] if not c.routed_on else []
    if c.routed_on:
        pending += [due["ack"]] if not c.acknowledged_on else []
        pending += [due["answer"]] if not c.answered_on else []
    upcoming = [d for d in pending if d >= today]
    return day_start(min(upcoming) + timedelta(days=1)) if upcoming else None


def snapshot(c: Complaint, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"complaint_id": c.complaint_id, "status": c.status, "channel": c.channel, "received_by": c.received_by,
            "received_on": iso(c.received_on), "summary": c.summary, "complainant": c.complainant,
            "party_id": c.party_id, "officer_id": c.officer_id, "dept": c.dept, "routed_on": iso(c.routed_on),
            "acknowledged_on": iso(c.acknowledged_on), "answered_on": iso(c.answered_on), "answer": c.answer,
            "satisfied": c.satisfied, "feedback_on": iso(c.feedback_on), "late": c.late,
            "due": {k: v.isoformat() for k, v in due_dates(c, s).items()}}


def repeated_signals(complaints: Iterable[dict], as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> list[dict]:
    """Parties or officers complained about at least `complaint_repeat_count` times within
    `complaint_repeat_window_days` before `as_of` (each complaint: {complaint_id, received_on,
    party_id, officer_id, dept}). Pure; a console signal (重复投诉), newest window only."""
    today = local_date(aware(as_of, "as_of"))
    since = today - timedelta(days=s.complaint_repeat_window_days)
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in complaints:
        on = parse_date(c["received_on"], "received_on")
        if not since < on <= today:
            continue
        for kind in ("party_id", "officer_id"):
            if c.get(kind):
                groups.setdefault((kind.removesuffix("_id"), c[kind]), []).append(c)
    out = []
    for (kind, subject), found in sorted(groups.items()):
        if len(found) >= s.complaint_repeat_count:
            out.append({"subject_type": kind, "subject_id": subject, "count": len(found),
                        "depts": sorted({c["dept"] for c in found if c.get("dept")}),
                        "complaints": sorted(c["complaint_id"] for c in found)})
    return out


# ---- commands ------------------------------------------------------------------------------------------

def _fact(type_, cid, at, acting_dept, event_id, actor, **payload) -> Fact:
    return command_fact(type_, "complaint_id", cid, at, acting_dept, event_id, actor, **payload)


def _existing(c: Complaint | None, cid: str) -> Complaint:
    if c is None or not c.received_on:
        raise NotFoundError(f"投诉举报 {cid} 不存在", field="complaint_id")
    if c.feedback_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 已办结", field="complaint_id")
    return c


def receive(c: Complaint | None, cid: str, *, channel: str, summary: str, at: datetime, dept: str, event_id: str,
            received_on: str | None = None, complainant: dict | None = None, party_id: str | None = None,
            officer_id: str | None = None, actor: str | None = None) -> Fact:
    """登记 at the console (the bureau)."""
    bureau_only(dept, "登记投诉举报")
    if c is not None and c.received_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 已登记", field="complaint_id")
    if channel not in CHANNELS:
        raise DomainError(f"来源渠道只能是：{'、'.join(CHANNELS)}", code="invalid_value", field="channel")
    return _fact(RECEIVED, cid, at, dept, event_id, actor, channel=channel,
                 summary=required_text(summary, "summary", "须填写投诉举报内容"),
                 received_on=on_or_today(received_on, at, "received_on").isoformat(),
                 complainant={k: v for k, v in (complainant or {}).items() if k in ("name", "phone") and v},
                 party_id=party_id or None, officer_id=officer_id or None)


def route(c: Complaint | None, cid: str, *, target: str, at: datetime, dept: str, event_id: str,
          routed_on: str | None = None, actor: str | None = None) -> Fact:
    """转办 to the department concerned (again: re-route, the department's clock restarts)."""
    bureau_only(dept, "转办投诉举报")
    c = _existing(c, cid)
    if is_justice_bureau(target):
        raise DomainError("投诉举报应转办给被投诉的执法部门", code="invalid_value", field="target")
    if c.answered_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 已由 {c.dept} 答复", field="complaint_id")
    on = on_or_today(routed_on, at, "routed_on")
    if on < c.received_on:
        raise DomainError("转办日期不能早于登记日期", code="invalid_value", field="routed_on")
    return _fact(ROUTED, cid, at, dept, event_id, actor, dept=target, routed_on=on.isoformat())


def _own(c: Complaint, cid: str, dept: str) -> None:
    if c.dept != dept:
        raise NotOwnerError(f"投诉举报 {cid} 未转办给 {dept}")


def acknowledge(c: Complaint | None, cid: str, *, at: datetime, dept: str, event_id: str,
                acknowledged_on: str | None = None, actor: str | None = None) -> Fact:
    """受理 (the department it was routed to)."""
    c = _existing(c, cid)
    _own(c, cid, dept)
    if c.acknowledged_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 已受理", field="complaint_id")
    return _fact(ACKNOWLEDGED, cid, at, dept, event_id, actor, dept=dept,
                 acknowledged_on=on_or_today(acknowledged_on, at, "acknowledged_on").isoformat())


def answer(c: Complaint | None, cid: str, *, text: str, at: datetime, dept: str, event_id: str,
           answered_on: str | None = None, actor: str | None = None) -> Fact:
    """答复 (the department it was routed to)."""
    c = _existing(c, cid)
    _own(c, cid, dept)
    if c.answered_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 已答复", field="complaint_id")
    return _fact(ANSWERED, cid, at, dept, event_id, actor, dept=dept,
                 answered_on=on_or_today(answered_on, at, "answered_on").isoformat(),
                 answer=required_text(text, "answer", "答复内容不能为空"))


def feedback(c: Complaint | None, cid: str, *, satisfied: bool, at: datetime, dept: str, event_id: str,
             comment: str | None = None, feedback_on: str | None = None, actor: str | None = None) -> Fact:
    """回访: the complainant's feedback, recorded by the bureau; closes the complaint."""
    bureau_only(dept, "记录投诉人反馈")
    c = _existing(c, cid)
    if not c.answered_on:
        raise IllegalTransitionError(f"投诉举报 {cid} 尚未答复，不能回访", field="complaint_id")
    return _fact(FEEDBACK, cid, at, dept, event_id, actor, satisfied=bool(satisfied), comment=comment,
                 feedback_on=on_or_today(feedback_on, at, "feedback_on").isoformat())


def admit(c: Complaint | None, fact: Fact) -> None:
    """Ingress: any unit may report a received complaint (the hotline centre); routing and feedback
    only the bureau; acknowledgement and answer only the department they name, and — once the
    complaint is known — only the department it was routed to. Steps reported before the complaint
    arrived are kept and folded in time order (a step from a department it was not routed to at
    that time changes nothing)."""
    cid = str(fact.payload.get("complaint_id") or "")
    if fact.type == RECEIVED:
        if c is not None and c.received_on:
            raise IllegalTransitionError(f"投诉举报 {cid} 已登记", field="payload.complaint_id")
        return
    if fact.type in (ROUTED, FEEDBACK):
        bureau_only(fact.dept, "转办投诉举报或记录反馈")
    elif fact.payload.get("dept") != fact.dept or (c is not None and c.routed_on and c.dept != fact.dept):
        raise NotOwnerError(f"投诉举报 {cid} 未转办给 {fact.dept}", field="payload.dept")
