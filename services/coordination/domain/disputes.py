"""Jurisdiction disputes (管辖争议): raised, answered, negotiated, referred, decided.

A department raises a dispute over a matter with one or more other departments, stating when it
filed (立案) the matter; each other party answers (agreeing or not, with its own filing date). The
justice bureau coordinates: an agreement recorded after negotiation (协商) ends it; failing that it
is referred to the common superior (报请共同的上一级机关指定), whose decision is recorded.
《行政处罚法》Art. 25: where two or more bodies have jurisdiction, the one that filed first has it —
`first_filer` proposes that department from the filing dates given (ties: no proposal).

Rules:
- COO-DSP-ANSWER-OVERDUE (warning): a party has not answered within `dispute_answer_days`;
- COO-DSP-UNRESOLVED (serious): neither agreed nor decided within `dispute_resolve_days` of being
  raised (the bureau's finding: it should refer the dispute up).
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

RAISED, ANSWERED, AGREED, REFERRED, DECIDED = (
    "dispute.raised", "dispute.answered", "dispute.agreed", "dispute.referred", "dispute.decided")
FACT_TYPES = (RAISED, ANSWERED, AGREED, REFERRED, DECIDED)
RULE_ANSWER, RULE_UNRESOLVED = "COO-DSP-ANSWER-OVERDUE", "COO-DSP-UNRESOLVED"
RULES = (RULE_ANSWER, RULE_UNRESOLVED)


@dataclass
class Dispute:
    dispute_id: str
    raised_by: str = ""
    matter: str = ""
    raised_on: date | None = None
    filed: dict[str, date] = field(default_factory=dict)        # dept -> its filing date (立案日期)
    parties: list[str] = field(default_factory=list)             # the other departments
    answers: dict[str, dict] = field(default_factory=dict)
    referred_to: str | None = None
    referred_on: date | None = None
    lead_dept: str | None = None
    settled_on: date | None = None
    settled_by: str | None = None                                 # agreement | decision

    @property
    def status(self) -> str:
        if self.settled_on:
            return "agreed" if self.settled_by == "agreement" else "decided"
        if self.referred_on:
            return "referred"
        if self.parties and all(p in self.answers for p in self.parties):
            return "negotiating"
        return "raised" if self.raised_on else "unknown"


def first_filer(d: Dispute) -> str | None:
    """Art. 25: the department that filed first (None when unknown or tied)."""
    if not d.filed:
        return None
    earliest = min(d.filed.values())
    firsts = [dept for dept, on in d.filed.items() if on == earliest]
    return firsts[0] if len(firsts) == 1 else None


def dispute_from_facts(facts: Iterable[Fact]) -> Dispute | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    d = Dispute(str(ordered[0].payload.get("dispute_id") or ""))
    for f in ordered:
        p = f.payload
        if f.type == RAISED:
            d.raised_by, d.matter = f.dept, p["matter"]
            d.raised_on = parse_date(p["raised_on"], "raised_on")
            d.parties = list(dict.fromkeys(x for x in p["parties"] if x != f.dept))
            if p.get("filed_on"):
                d.filed[f.dept] = parse_date(p["filed_on"], "filed_on")
        elif f.type == ANSWERED and f.dept in d.parties:
            d.answers[f.dept] = {"agrees": bool(p["agrees"]), "answered_on": p["answered_on"],
                                 "position": p.get("position", "")}
            if p.get("filed_on"):
                d.filed[f.dept] = parse_date(p["filed_on"], "filed_on")
        elif f.type == REFERRED:
            d.referred_to, d.referred_on = p["referred_to"], parse_date(p["referred_on"], "referred_on")
        elif f.type in (AGREED, DECIDED):
            d.lead_dept = p["lead_dept"]
            d.settled_on = parse_date(p["settled_on"], "settled_on")
            d.settled_by = "agreement" if f.type == AGREED else "decision"
    return d


def _due(d: Dispute, s: CoordinationSettings) -> tuple[date, date]:
    return s.add_days(d.raised_on, s.dispute_answer_days), d.raised_on + timedelta(days=s.dispute_resolve_days)


def evaluate(d: Dispute | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> list[Finding]:
    if d is None or not d.raised_on or d.settled_on:
        return []
    today = local_date(aware(as_of, "as_of"))
    answer_due, resolve_due = _due(d, s)
    out = []
    if today > answer_due:
        for party in d.parties:
            if party not in d.answers:
                out.append(Finding(RULE_ANSWER, "warning", party, "dispute", f"{d.dispute_id}:{party}", as_of,
                                   {"dispute_id": d.dispute_id, "raised_by": d.raised_by,
                                    "answer_due": answer_due.isoformat(), "days_overdue": (today - answer_due).days},
                                   f"{party} 未在 {answer_due.isoformat()} 前答复 {d.raised_by} 提出的管辖争议"))
    if today > resolve_due and not d.referred_on:
        out.append(Finding(RULE_UNRESOLVED, "serious", d.raised_by, "dispute", d.dispute_id, as_of,
                           {"dispute_id": d.dispute_id, "parties": [d.raised_by, *d.parties],
                            "resolve_due": resolve_due.isoformat(), "first_filer": first_filer(d)},
                           f"管辖争议 {d.dispute_id} 超过 {s.dispute_resolve_days} 日未协商一致，应报请共同上级机关指定管辖"))
    return out


def next_due(d: Dispute | None, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    if d is None or not d.raised_on or d.settled_on:
        return None
    today = local_date(aware(as_of, "as_of"))
    answer_due, resolve_due = _due(d, s)
    pending = [answer_due] if any(p not in d.answers for p in d.parties) else []
    pending += [resolve_due] if not d.referred_on else []
    upcoming = [x for x in pending if x >= today]
    return day_start(min(upcoming) + timedelta(days=1)) if upcoming else None


def snapshot(d: Dispute, as_of: datetime, s: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    iso = lambda x: x.isoformat() if x else None  # noqa: E731
    answer_due, resolve_due = _due(d, s) if d.raised_on else (None, None)
    return {"dispute_id": d.dispute_id, "status": d.status, "matter": d.matter, "raised_by": d.raised_by,
            "depts": [d.raised_by, *d.parties], "raised_on": iso(d.raised_on),
            "filed": {k: v.isoformat() for k, v in d.filed.items()}, "first_filer": first_filer(d),
            "answers": d.answers, "answer_due": iso(answer_due), "resolve_due": iso(resolve_due),
            "referred_to": d.referred_to, "referred_on": iso(d.referred_on), "lead_dept": d.lead_dept,
            "settled_on": iso(d.settled_on), "settled_by": d.settled_by}


def _fact(type_, dispute_id, at, acting_dept, event_id, actor, **payload) -> Fact:
    return command_fact(type_, "dispute_id", dispute_id, at, acting_dept, event_id, actor, **payload)


def _open(d: Dispute | None, dispute_id: str) -> Dispute:
    if d is None or not d.raised_on:
        raise NotFoundError(f"管辖争议 {dispute_id} 不存在", field="dispute_id")
    if d.settled_on:
        raise IllegalTransitionError(f"管辖争议 {dispute_id} 已解决（{d.lead_dept} 管辖）", field="dispute_id")
    return d


def raise_dispute(d: Dispute | None, dispute_id: str, *, matter: str, parties: list[str], at: datetime, dept: str,
                  event_id: str, filed_on: str | None = None, raised_on: str | None = None,
                  actor: str | None = None) -> Fact:
    """A department raises a dispute with other departments."""
    if d is not None and d.raised_on:
        raise IllegalTransitionError(f"管辖争议 {dispute_id} 已提出", field="dispute_id")
    if is_justice_bureau(dept):
        raise DomainError("管辖争议由执法部门提出，司法局负责协调", code="invalid_value", field="dept")
    others = list(dict.fromkeys(p for p in parties if p and p != dept))
    if not others:
        raise DomainError("须指明与之发生争议的部门", code="invalid_value", field="parties")
    return _fact(RAISED, dispute_id, at, dept, event_id, actor, matter=required_text(matter, "matter", "须说明争议事项"),
                 parties=others, raised_on=on_or_today(raised_on, at, "raised_on").isoformat(),
                 filed_on=parse_date(filed_on, "filed_on").isoformat() if filed_on else None)


def answer(d: Dispute | None, dispute_id: str, *, agrees: bool, at: datetime, dept: str, event_id: str,
           position: str | None = None, filed_on: str | None = None, answered_on: str | None = None,
           actor: str | None = None) -> Fact:
    """A party answers (only a party named in the dispute, once)."""
    d = _open(d, dispute_id)
    if dept not in d.parties:
        raise NotOwnerError(f"{dept} 不是管辖争议 {dispute_id} 的一方")
    if dept in d.answers:
        raise IllegalTransitionError(f"{dept} 已答复管辖争议 {dispute_id}", field="dispute_id")
    return _fact(ANSWERED, dispute_id, at, dept, event_id, actor, agrees=bool(agrees), position=position,
                 answered_on=on_or_today(answered_on, at, "answered_on").isoformat(),
                 filed_on=parse_date(filed_on, "filed_on").isoformat() if filed_on else None)


def _lead(d: Dispute, lead_dept: str) -> None:
    if lead_dept not in (d.raised_by, *d.parties):
        raise DomainError(f"管辖部门须是争议一方：{'、'.join([d.raised_by, *d.parties])}", code="invalid_value",
                          field="lead_dept")


def agree(d: Dispute | None, dispute_id: str, *, lead_dept: str, at: datetime, dept: str, event_id: str,
          settled_on: str | None = None, note: str | None = None, actor: str | None = None) -> Fact:
    """协商一致, recorded by the bureau that coordinated it."""
    bureau_only(dept, "记录管辖争议协商结果")
    d = _open(d, dispute_id)
    _lead(d, lead_dept)
    return _fact(AGREED, dispute_id, at, dept, event_id, actor, lead_dept=lead_dept, note=note,
                 settled_on=on_or_today(settled_on, at, "settled_on").isoformat())


def refer(d: Dispute | None, dispute_id: str, *, referred_to: str, at: datetime, dept: str, event_id: str,
          referred_on: str | None = None, actor: str | None = None) -> Fact:
    """报请共同上级机关指定管辖."""
    bureau_only(dept, "报请指定管辖")
    d = _open(d, dispute_id)
    if d.referred_on:
        raise IllegalTransitionError(f"管辖争议 {dispute_id} 已报请 {d.referred_to}", field="dispute_id")
    return _fact(REFERRED, dispute_id, at, dept, event_id, actor,
                 referred_to=required_text(referred_to, "referred_to", "须写明报请的共同上级机关"),
                 referred_on=on_or_today(referred_on, at, "referred_on").isoformat())


def decide(d: Dispute | None, dispute_id: str, *, lead_dept: str, at: datetime, dept: str, event_id: str,
           basis: str | None = None, settled_on: str | None = None, actor: str | None = None) -> Fact:
    """The common superior's designation (指定管辖), recorded by the bureau after referral."""
    bureau_only(dept, "记录指定管辖决定")
    d = _open(d, dispute_id)
    if not d.referred_on:
        raise IllegalTransitionError(f"管辖争议 {dispute_id} 尚未报请上级机关", field="dispute_id")
    _lead(d, lead_dept)
    return _fact(DECIDED, dispute_id, at, dept, event_id, actor, lead_dept=lead_dept, basis=basis,
                 settled_on=on_or_today(settled_on, at, "settled_on").isoformat())


def admit(d: Dispute | None, fact: Fact) -> None:
    """Ingress: a department raises, a named party answers (once the dispute is known; an answer
    reported before it is kept and folded in order — one from a non-party changes nothing), the
    bureau records agreement, referral and designation."""
    dispute_id = str(fact.payload.get("dispute_id") or "")
    if fact.type == RAISED:
        if d is not None and d.raised_on:
            raise IllegalTransitionError(f"管辖争议 {dispute_id} 已提出", field="payload.dispute_id")
        if is_justice_bureau(fact.dept):
            raise DomainError("管辖争议由执法部门提出", code="invalid_value", field="dept")
        return
    if fact.type == ANSWERED and d is not None and d.raised_on and fact.dept not in d.parties:
        raise NotOwnerError(f"{fact.dept} 不是管辖争议 {dispute_id} 的一方", field="dept")
    if fact.type in (AGREED, REFERRED, DECIDED):
        bureau_only(fact.dept, "协调管辖争议")
