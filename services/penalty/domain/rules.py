"""Penalty case rules (监督规则): pure functions of (case, facts, settings, as_of, calendar).

Each rule returns at most one Finding per case (a finding's key is rule + case) and puts the
numbers it used in `evidence`. Deadline rules also say when they could next fire (`due_dates`),
so the service stores the instant and a timer re-evaluates with no new fact.

Day counting: the start day is not counted; an N-day limit ends with the N-th day (China time,
`settings.utc_offset_hours`) and its finding fires from the first instant after that day.
Working-day limits use the WorkdayCalendar (Art. 85); the 90-day, 15-day payment and major-filing
limits are calendar days. Evaluate a case folded from the facts known at `as_of`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

from services.common import arrivals
from services.common.crime import thresholds_reached
from services.common.errors import DomainError
from services.common.findings import Finding
from services.common.workdays import WorkdayCalendar
from services.penalty.domain.case import Case, Decision, parse_time
from services.penalty.domain.settings import PenaltySettings

Verdict = tuple[bool, Sequence[str]]
Rule = Callable[[Case, "CaseFacts", PenaltySettings, datetime, WorkdayCalendar], list[Finding]]

OFFICERS_MIN = "PEN-OFFICERS-MIN"
OFFICER_CREDENTIAL = "PEN-OFFICER-CREDENTIAL"
ITEM_NOT_HELD = "PEN-ITEM-NOT-HELD"
FILING_LATE = "PEN-FILING-LATE"
DECISION_OVERDUE = "PEN-DECISION-OVERDUE"
HEARING_NOT_NOTIFIED = "PEN-HEARING-NOT-NOTIFIED"
HEARING_WINDOW = "PEN-HEARING-WINDOW"
LEGAL_REVIEW_MISSING = "PEN-LEGAL-REVIEW-MISSING"
COLLECTIVE_MISSING = "PEN-COLLECTIVE-MISSING"
FINE_OUT_OF_TIER = "PEN-FINE-OUT-OF-TIER"
SIMPLE_OVER_LIMIT = "PEN-SIMPLE-OVER-LIMIT"
SERVICE_LATE = "PEN-SERVICE-LATE"
PUBLICATION_LATE = "PEN-PUBLICATION-LATE"
WITHDRAWAL_LATE = "PEN-WITHDRAWAL-LATE"
MAJOR_NOT_FILED = "PEN-MAJOR-NOT-FILED"
PAYMENT_OVERDUE = "PEN-PAYMENT-OVERDUE"
AV_MISSING = "PEN-AV-MISSING"
DOUBLE_FINE = "PEN-DOUBLE-FINE"
CRIME_NO_HANDOVER = "PEN-CRIME-NO-HANDOVER"
FACT_HELD = "PEN-FACT-HELD"
FACT_ANOMALY = "PEN-FACT-ANOMALY"

SEVERITY = {
    ITEM_NOT_HELD: "critical", OFFICER_CREDENTIAL: "critical", DOUBLE_FINE: "critical",
    CRIME_NO_HANDOVER: "critical",
    OFFICERS_MIN: "serious", DECISION_OVERDUE: "serious", HEARING_NOT_NOTIFIED: "serious",
    HEARING_WINDOW: "serious", LEGAL_REVIEW_MISSING: "serious", COLLECTIVE_MISSING: "serious",
    FINE_OUT_OF_TIER: "serious", SIMPLE_OVER_LIMIT: "serious", AV_MISSING: "serious",
    FILING_LATE: "warning", SERVICE_LATE: "warning", PUBLICATION_LATE: "warning",
    WITHDRAWAL_LATE: "warning", MAJOR_NOT_FILED: "warning", PAYMENT_OVERDUE: "warning",
    FACT_HELD: "warning", FACT_ANOMALY: "warning",
}


@dataclass(frozen=True)
class ItemView:
    """What the item registry says about one item for one department at one time."""

    code: str
    held: bool = True                     # the department holds the item (权力清单) at that time
    legal_basis: str = ""                 # law + article; empty = no legal basis
    bases: tuple[tuple[str, str], ...] = ()  # (law, article) pairs the item cites (crime thresholds key on them)
    category: str = "penalty"             # the service maps the registry's category onto this
    area: str = ""                        # 执法领域 a credential must cover
    tiers: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # tier -> (min, max) fine


@dataclass(frozen=True)
class CaseFacts:
    """What the case itself does not know; the service builds it from projections (no RPC in rules).

    credentials: (officer_id, area, at) -> (allowed, reasons), or {officer_id: (allowed, reasons)}
        already resolved for this case (an officer missing from the dict has no credential).
    items: (dept, item_code, at) -> ItemView | None (None = not in the registry), or {code: ItemView}.
    crime_thresholds: from plugins, {id, bases: [{law, article}], item_codes?, measure, threshold, law, name}
        (services/common/crime.py: a threshold applies by the legal basis the item cites).
    other_decisions: other cases' decisions for the same party, {case_id, dept, decision_no,
        party_id, act_code, decided_at, fine_amount, kinds, revoked}.
    A missing source (None) means "unknown": the rules that need it stay silent.
    """

    credentials: Callable[[str, str, datetime], Verdict] | Mapping[str, Verdict] | None = None
    items: Callable[[str, str, datetime], ItemView | None] | Mapping[str, ItemView] | None = None
    crime_thresholds: Sequence[Mapping[str, Any]] = ()
    other_decisions: Sequence[Mapping[str, Any]] = ()
    officer_kinds: Callable[[str], str | None] | Mapping[str, str] | None = None

    def officer_kind(self, officer_id: str) -> str | None:
        """'officer' / 'auxiliary' / 'supervisor' as personnel registered the person; None = unknown."""
        if self.officer_kinds is None:
            return None
        if callable(self.officer_kinds):
            return self.officer_kinds(officer_id)
        return self.officer_kinds.get(officer_id)

    def credential(self, officer_id: str, area: str, at: datetime) -> Verdict | None:
        if self.credentials is None:
            return None
        if callable(self.credentials):
            return self.credentials(officer_id, area, at)
        return self.credentials.get(officer_id, (False, ("未查询到该人员的执法证件",)))

    def item(self, dept: str, code: str, at: datetime) -> ItemView | None:
        if callable(self.items):
            return self.items(dept, code, at)
        return self.items.get(code) if self.items is not None else None


# -- time helpers --

@lru_cache(maxsize=64)
def _zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


def _tz(settings: PenaltySettings) -> timezone:
    return _zone(settings.utc_offset_hours)


def local_day(at: datetime, settings: PenaltySettings) -> date:
    return at.astimezone(_tz(settings)).date()


def _after(day: date, settings: PenaltySettings) -> datetime:
    """The first instant after `day`: when a limit ending that day is broken."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=_tz(settings))


def days_due(start: datetime, days: int, settings: PenaltySettings) -> datetime:
    return _after(local_day(start, settings) + timedelta(days=days), settings)


def workdays_due(start: datetime, wd: int, settings: PenaltySettings, calendar: WorkdayCalendar) -> datetime:
    return _after(calendar.add_workdays(local_day(start, settings), wd), settings)


def _last_day(due: datetime) -> str:
    return (due - timedelta(days=1)).date().isoformat()


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _dept(case: Case) -> str:
    if case.dept:
        return case.dept
    pending = case.held + case.anomalies
    return pending[0].fact.dept if pending else ""


def _finding(rule_id: str, case: Case, as_of: datetime, message: str, **evidence: Any) -> list[Finding]:
    return [Finding(rule_id, SEVERITY[rule_id], _dept(case), "case", case.case_id, as_of, evidence, message)]


# -- classifications the rules share (also useful to the service and console) --

def late_fee(amount: float, overdue_days: int, settings: PenaltySettings) -> float:
    """加处罚款 (Art. 72): rate per day on the unpaid fine, never more than that fine."""
    return round(min(amount * settings.late_fee_rate_per_day * max(overdue_days, 0), amount), 2)


def major_reasons(d: Decision, settings: PenaltySettings) -> list[str]:
    """Why a decision is a major penalty (重大行政处罚) under these settings; empty = not major."""
    reasons = [f"处罚种类：{k}" for k in d.kinds if k in settings.major_kinds]
    if d.fine_amount >= settings.major_fine_threshold:
        reasons.append(f"罚款 {d.fine_amount:g} 元 ≥ {settings.major_fine_threshold:g} 元")
    if d.confiscation_amount > 0 and "confiscation" in settings.major_kinds and "confiscation" not in d.kinds:
        reasons.append(f"没收 {d.confiscation_amount:g} 元")
    return reasons


def hearing_triggers(d: Decision, settings: PenaltySettings) -> list[str]:
    """Art. 63: why the party had a right to a hearing before this decision."""
    limit = settings.hearing_fine_org if d.party_type == "org" else settings.hearing_fine_person
    out = [f"处罚种类：{k}" for k in d.kinds if k in settings.hearing_kinds]
    if d.fine_amount >= limit:
        out.append(f"较大数额罚款 {d.fine_amount:g} 元 ≥ {limit:g} 元")
    if d.confiscation_amount >= limit:
        out.append(f"没收较大数额 {d.confiscation_amount:g} 元 ≥ {limit:g} 元")
    return out


def publication_required(d: Decision, settings: PenaltySettings) -> bool:
    if d.publication_exempt:
        return False
    return d.procedure != "simple" or settings.publish_simple_procedure


def excluded_days(case: Case, settings: PenaltySettings, until: datetime) -> int:
    """Calendar days of hearing, suspension and testing time up to `until` (overlaps counted once)."""
    days: set[date] = set()
    for start, end in case.excluded_intervals():
        day, last = local_day(start, settings), local_day(min(end or until, until), settings)
        while day < last:
            days.add(day)
            day += timedelta(days=1)
    return len(days)


def decision_due(case: Case, settings: PenaltySettings, until: datetime) -> datetime | None:
    """Art. 60: the instant the decision limit is broken, excluded time counted up to `until`."""
    if case.filed_at is None or case.procedure == "simple":
        return None
    extension = min(sum(e.days for e in case.extensions if e.approved), settings.decision_extension_days)
    total = settings.decision_days + extension + excluded_days(case, settings, until)
    return days_due(case.filed_at, total, settings)


def _notice_before(case: Case, d: Decision):
    before = [n for n in case.notices if n.at <= d.at]
    return before[-1] if before else None


# -- the rules --

NOT_OFFICER_KINDS = frozenset({"auxiliary", "supervisor"})


def check_officers(case, facts, settings, as_of, calendar) -> list[Finding]:
    """At least two officers for investigation and on-the-spot acts (Art. 42).

    Auxiliaries (辅助人员) and supervisors do not count, whether they are listed as `auxiliaries`
    or — wrongly — among the act's `officers` (personnel's registration says who is who); the
    credential rule then also reports the auxiliary who acted (国办发〔2024〕54号).
    """
    short = []
    for a in case.acts:
        listed = sorted(set(a.officers))
        not_officers = [o for o in listed if facts.officer_kind(o) in NOT_OFFICER_KINDS]
        counted = [o for o in listed if o not in not_officers and o not in a.auxiliaries]
        if len(counted) < settings.min_officers:
            short.append({"event_id": a.event_id, "at": _iso(a.at), "act_kind": a.kind, "officers": len(counted),
                          "auxiliaries": len(set(a.auxiliaries) | set(not_officers)),
                          "listed_as_officers_but_not": not_officers})
    if not short:
        return []
    return _finding(OFFICERS_MIN, case, as_of, f"{len(short)} 次执法行为的执法人员少于 {settings.min_officers} 人"
                    + ("（辅助人员、监督员不计入）" if any(s["listed_as_officers_but_not"] for s in short) else ""),
                    min_officers=settings.min_officers, acts=short)


def _item_area(case: Case, facts: CaseFacts) -> str:
    at = case.filed_at or (case.decisions[0].at if case.decisions else None)
    view = facts.item(case.dept, case.item_code, at) if case.item_code and at and facts.items is not None else None
    return view.area if view else ""


def check_credentials(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Every officer acting holds a valid credential covering the item's area at that time (Art. 42)."""
    if facts.credentials is None:
        return []
    area = _item_area(case, facts)
    acting = [(a.event_id, a.at, o) for a in case.acts for o in a.officers]
    acting += [(d.event_id, d.at, o) for d in case.decisions for o in d.officers]
    bad, seen = [], set()
    for event_id, at, officer in acting:
        if (event_id, officer) in seen:
            continue
        seen.add((event_id, officer))
        allowed, reasons = facts.credential(officer, area, at)
        if not allowed:
            bad.append({"officer_id": officer, "event_id": event_id, "at": _iso(at), "reasons": list(reasons)})
    if not bad:
        return []
    # the real reason of each officer at the time of the act (e.g. "证件 X 在 D 处于暂扣期间（自 A 起暂扣至 B）")
    first: dict[str, str] = {}
    for b in bad:
        first.setdefault(b["officer_id"], b["reasons"][0] if b["reasons"] else "无有效执法证件")
    why = "；".join(f"{officer}：{reason}" for officer, reason in sorted(first.items()))
    return _finding(OFFICER_CREDENTIAL, case, as_of, f"执法人员执法时不具备执法资格（{why}）",
                    area=area, violations=bad)


def check_item(case, facts, settings, as_of, calendar) -> list[Finding]:
    """The case's item is in the department's list, with a legal basis, at the time (主体/依据合法)."""
    if facts.items is None:
        return []
    # judged by the item each decision was made under; before any decision, by the filed item
    checks = [(d.item_code, d.at) for d in case.decisions] or [(case.item_code, case.filed_at)]
    problems = []
    for code, at in checks:
        view = facts.item(case.dept, code, at) if code else None
        reasons = []
        if not code:
            reasons.append("未关联执法事项")
        elif view is None:
            reasons.append("事项不在本部门权力清单中")
        else:
            if not view.held:
                reasons.append("本部门当时不具有该事项的执法权")
            if not view.legal_basis:
                reasons.append("事项没有执法依据")
            if view.category != "penalty":
                reasons.append(f"事项类别为 {view.category}，不是行政处罚")
        if reasons:
            problems.append({"item_code": code, "at": _iso(at), "reasons": reasons})
    if not problems:
        return []
    text = "；".join(r for p in problems for r in p["reasons"])
    return _finding(ITEM_NOT_HELD, case, as_of, f"执法主体或依据不合法：{text}", items=problems)


def check_filing(case, facts, settings, as_of, calendar) -> list[Finding]:
    """及时立案 (Art. 54): filed within `filing_wd` working days of discovery (department setting)."""
    if settings.filing_wd is None or not case.discovered_at or not case.filed_at:
        return []
    wd = settings.filing_wd + (settings.filing_extension_wd if case.filing_extension_approved else 0)
    due = workdays_due(case.discovered_at, wd, settings, calendar)
    if case.filed_at < due:
        return []
    return _finding(FILING_LATE, case, as_of, f"发现违法行为后超过 {wd} 个工作日才立案",
                    discovered_at=_iso(case.discovered_at), filed_at=_iso(case.filed_at), limit_wd=wd,
                    last_day=_last_day(due))


def check_decision_deadline(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Decision within 90 days of filing (Art. 60), plus approved extension, minus excluded time."""
    if case.filed_at is None or case.procedure == "simple":
        return []
    ended = case.decisions[0].at if case.decisions else case.closed_at
    moment = ended or as_of
    due = decision_due(case, settings, moment)
    if moment < due or (ended is None and settling_until(case, settings, as_of)):
        return []
    granted = sum(e.days for e in case.extensions if e.approved)
    evidence = dict(filed_at=_iso(case.filed_at), decided_at=_iso(ended), last_day=_last_day(due),
                    decision_days=settings.decision_days,
                    extension_days=min(granted, settings.decision_extension_days),
                    excluded_days=excluded_days(case, settings, moment))
    if ended:
        message = f"案件超过办案期限才作出处理（期限至 {_last_day(due)}）"
    else:
        message = f"案件已超过办案期限（期限至 {_last_day(due)}）仍未作出处理决定"
    return _finding(DECISION_OVERDUE, case, as_of, message, **evidence)


def check_hearing_notice(case, facts, settings, as_of, calendar) -> list[Finding]:
    """A decision giving a hearing right (Art. 63) was preceded by a notice of that right (Art. 64)."""
    problems = []
    for d in case.decisions:
        triggers = hearing_triggers(d, settings)
        notice = _notice_before(case, d)
        if d.procedure == "simple" or not triggers or (notice and notice.hearing_right):
            continue
        problems.append({"decision_no": d.decision_no, "triggers": triggers,
                         "notice_at": _iso(notice.at) if notice else None})
    if not problems:
        return []
    return _finding(HEARING_NOT_NOTIFIED, case, as_of, "依法应当告知听证权利的处罚未告知当事人听证权利",
                    decisions=problems, hearing_fine_person=settings.hearing_fine_person,
                    hearing_fine_org=settings.hearing_fine_org)


def check_hearing_window(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Party may ask within 5 wd of notice; the hearing is notified 7 wd ahead (Art. 64)."""
    problems = []
    for d in case.decisions:
        notice = _notice_before(case, d)
        if d.procedure == "simple" or not notice or not notice.hearing_right or d.hearing_waived:
            continue
        window = workdays_due(notice.at, settings.hearing_request_wd, settings, calendar)
        requested = any(h.requested_at >= notice.at for h in case.hearings)
        if not requested and d.at < window:
            problems.append({"problem": "听证申请期限届满前作出决定", "decision_no": d.decision_no,
                             "notice_at": _iso(notice.at), "request_last_day": _last_day(window)})
    for h in case.hearings:
        if h.held_at is None or h.outcome == "withdrawn":
            continue
        if h.notified_at is None:
            problems.append({"problem": "举行听证前未通知听证时间、地点", "held_at": _iso(h.held_at)})
            continue
        gap = calendar.workdays_between(local_day(h.notified_at, settings), local_day(h.held_at, settings))
        if gap < settings.hearing_notice_wd:
            problems.append({"problem": f"听证通知距举行不足 {settings.hearing_notice_wd} 个工作日",
                             "notified_at": _iso(h.notified_at), "held_at": _iso(h.held_at), "workdays": gap})
    if not problems:
        return []
    return _finding(HEARING_WINDOW, case, as_of, "；".join(p["problem"] for p in problems), problems=problems,
                    hearing_request_wd=settings.hearing_request_wd, hearing_notice_wd=settings.hearing_notice_wd)


def legal_review_reasons(case: Case, d: Decision, settings: PenaltySettings) -> list[str]:
    """Art. 58: why this decision needed a legal review (法制审核)."""
    reasons = []
    if any(h.outcome == "held" and h.held_at and h.held_at <= d.at for h in case.hearings):
        reasons.append("经过听证程序")
    if major_reasons(d, settings):
        reasons.append("重大行政处罚")
    labels = {"major_public_interest": "涉及重大公共利益", "complex": "案件情况疑难复杂",
              "legal_review_required": "法律法规规定应当审核"}
    return reasons + [label for flag, label in labels.items() if flag in case.flags]


def check_legal_review(case, facts, settings, as_of, calendar) -> list[Finding]:
    """A decision that needs a legal review had one, and it passed, before deciding (Art. 58)."""
    d = case.decision
    if not d or d.procedure == "simple":
        return []
    reasons = legal_review_reasons(case, d, settings)
    before = [r for r in case.reviews if r.at <= d.at]
    if not reasons or (before and before[-1].passed):
        return []
    problem = "未经法制审核" if not before else "法制审核未通过即作出决定"
    return _finding(LEGAL_REVIEW_MISSING, case, as_of, f"{problem}（应当审核：{'、'.join(reasons)}）",
                    decision_no=d.decision_no, reasons=reasons, reviewed=bool(before))


def check_collective(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Complex or major cases are decided by the agency heads collectively (Art. 57)."""
    d = case.decision
    if not d or d.procedure == "simple":
        return []
    reasons = (["案件情况复杂"] if "complex" in case.flags else []) + major_reasons(d, settings)
    if not reasons or any(at <= d.at for at in case.discussions):
        return []
    return _finding(COLLECTIVE_MISSING, case, as_of, f"情节复杂或重大违法行为的处罚未经集体讨论（{'；'.join(reasons)}）",
                    decision_no=d.decision_no, reasons=reasons)


def check_fine_tier(case, facts, settings, as_of, calendar) -> list[Finding]:
    """A decided fine lies inside the range of the discretion tier applied (裁量基准).

    A decision must name its tier — except an on-the-spot one (当场处罚, Art. 51), whose small fine is
    often written without it: when `case.decided_on_spot` carries no `tier`, the fine must lie inside
    the range of *some* tier of the standard in force (the evidence names the tiers that fit), and
    only a fine outside every tier is a finding.
    """
    d = case.decision
    if not d or d.fine_amount <= 0 or facts.items is None:
        return []
    view = facts.item(case.dept, d.item_code, d.at) if d.item_code else None
    if view is None or not view.tiers:
        return []
    evidence = dict(decision_no=d.decision_no, item_code=d.item_code, tier=d.tier, fine_amount=d.fine_amount)
    if not d.tier and d.on_spot:
        fitting = sorted({name for name, (low, high) in view.tiers.items() if low <= d.fine_amount <= high})
        if fitting:
            return []
        return _finding(FINE_OUT_OF_TIER, case, as_of,
                        f"当场处罚未标明裁量阶次，且罚款 {d.fine_amount:g} 元不在任何阶次幅度内", **evidence,
                        tiers={k: list(v) for k, v in sorted(view.tiers.items())})
    if d.tier not in view.tiers:
        problem = "未标明裁量阶次" if not d.tier else f"裁量阶次 {d.tier} 不存在"
        return _finding(FINE_OUT_OF_TIER, case, as_of, problem, **evidence, tiers=sorted(view.tiers))
    low, high = view.tiers[d.tier]
    if low <= d.fine_amount <= high:
        return []
    return _finding(FINE_OUT_OF_TIER, case, as_of,
                    f"罚款 {d.fine_amount:g} 元超出“{d.tier}”阶次幅度 {low:g}–{high:g} 元", **evidence,
                    tier_min=low, tier_max=high)


def check_simple_limit(case, facts, settings, as_of, calendar) -> list[Finding]:
    """当场处罚 only for a warning or a fine up to 200 yuan (person) / 3,000 yuan (org) (Art. 51)."""
    problems = []
    for d in case.decisions:
        if d.procedure != "simple":
            continue
        limit = settings.simple_limit_org if d.party_type == "org" else settings.simple_limit_person
        other = [k for k in d.kinds if k not in settings.simple_kinds]
        if other:
            problems.append(f"简易程序不得作出 {'、'.join(other)} 处罚")
        if d.fine_amount > limit:
            problems.append(f"简易程序罚款 {d.fine_amount:g} 元超过 {limit:g} 元")
    if not problems:
        return []
    return _finding(SIMPLE_OVER_LIMIT, case, as_of, "；".join(problems), problems=problems,
                    simple_limit_person=settings.simple_limit_person, simple_limit_org=settings.simple_limit_org)


def settling_until(case: Case, settings: PenaltySettings, as_of: datetime) -> datetime | None:
    """While the case's facts are still arriving — its latest fact arrived less than
    `arrival_settle_seconds` before `as_of` — the instant it settles; else None.

    Facts that arrive together (a department replaying a case's history, a batch split over
    queues) are judged together: a rule about something *not yet done* (no decision, not served,
    not published, not filed, not paid, not withdrawn) does not fire while the case is settling,
    because the missing fact may be in the same batch. The due dates include the settle instant,
    so the rule is judged again then (docs/consistency.md). A breach that is certain from the facts
    themselves (done late, fewer than two officers…) is found at once.
    """
    return arrivals.settling_until(case.last_received_at, settings.arrival_settle_seconds, as_of)


def _deadline(rule_id: str, case: Case, as_of: datetime, due: datetime, done: datetime | None,
              late_msg: str, open_msg: str, settings: PenaltySettings | None = None, **evidence: Any) -> list[Finding]:
    moment = done or as_of
    if moment < due or (done is None and settings is not None and settling_until(case, settings, as_of)):
        return []
    message = (late_msg if done else open_msg).format(last_day=_last_day(due))
    return _finding(rule_id, case, as_of, message, last_day=_last_day(due), done_at=_iso(done), **evidence)


def check_service(case, facts, settings, as_of, calendar) -> list[Finding]:
    """The decision is served within 7 wd when the party is absent (Art. 61)."""
    d = case.decision
    if not d or d.on_spot or d.revoked:
        return []
    due = workdays_due(d.at, settings.service_wd, settings, calendar)
    return _deadline(SERVICE_LATE, case, as_of, due, d.served_at, "处罚决定书超过期限送达（应于 {last_day} 前送达）",
                     "处罚决定书逾期未送达（应于 {last_day} 前送达）", settings, decision_no=d.decision_no,
                     decided_at=_iso(d.at), service_wd=settings.service_wd)


def check_publication(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Penalty decisions published within 7 wd, other decisions within 20 wd (国办发〔2018〕118号)."""
    d = case.decision
    if not d or d.revoked or not publication_required(d, settings):
        return []
    wd = settings.publication_penalty_wd if d.penalized else settings.publication_other_wd
    due = workdays_due(d.at, wd, settings, calendar)
    return _deadline(PUBLICATION_LATE, case, as_of, due, d.published_at, "执法决定超过期限公示（应于 {last_day} 前公示）",
                     "执法决定逾期未公示（应于 {last_day} 前公示）", settings, decision_no=d.decision_no,
                     decided_at=_iso(d.at), limit_wd=wd)


def check_withdrawal(case, facts, settings, as_of, calendar) -> list[Finding]:
    """A published decision that was revoked is taken down within 3 wd (Art. 48)."""
    late = []
    for d in case.decisions:
        if not (d.revoked_at and d.published_at):
            continue
        due = workdays_due(d.revoked_at, settings.withdrawal_wd, settings, calendar)
        if d.withdrawn_at is None and settling_until(case, settings, as_of):
            continue
        if (d.withdrawn_at or as_of) >= due:
            late.append({"decision_no": d.decision_no, "revoked_at": _iso(d.revoked_at),
                         "withdrawn_at": _iso(d.withdrawn_at), "last_day": _last_day(due)})
    if not late:
        return []
    return _finding(WITHDRAWAL_LATE, case, as_of, f"已撤销的处罚决定未在 {settings.withdrawal_wd} 个工作日内撤下公示",
                    decisions=late, withdrawal_wd=settings.withdrawal_wd)


def check_major_filing(case, facts, settings, as_of, calendar) -> list[Finding]:
    """A major penalty is filed with the justice bureau in time (seed 001: 15 days; seed 000: 60)."""
    d = case.decision
    reasons = major_reasons(d, settings) if d and not d.revoked else []
    if not reasons:
        return []
    due = days_due(d.at, settings.major_filing_days, settings)
    return _deadline(MAJOR_NOT_FILED, case, as_of, due, d.major_filed_at,
                     "重大行政处罚决定超过期限备案（应于 {last_day} 前备案）",
                     "重大行政处罚决定逾期未报司法局备案（应于 {last_day} 前备案）", settings, decision_no=d.decision_no,
                     reasons=reasons, major_filing_days=settings.major_filing_days,
                     major_fine_threshold=settings.major_fine_threshold)


def late_payment(d: Decision, settings: PenaltySettings) -> dict[str, Any] | None:
    """A fine paid in full after its limit (Arts. 67, 72): the late fee at the payment date.

    None while unpaid, paid in time, or with no limit yet (not served). The fee is the rate per day
    on the amount outstanding when the limit passed, for each day from the day after the last day
    up to the payment day, capped at that amount — the same reckoning PEN-PAYMENT-OVERDUE shows
    while the fine is unpaid, frozen at the day it was paid.
    """
    if d.fine_amount <= 0 or not d.effective_served_at or not d.payments:
        return None
    due = days_due(d.effective_served_at, settings.payment_days, settings)
    paid, settled_at = 0.0, None
    for p in sorted(d.payments, key=lambda p: p.at):
        paid += p.amount
        if round(d.fine_amount - paid, 2) <= 0:
            settled_at = p.at
            break
    if settled_at is None or settled_at < due:
        return None
    outstanding = round(d.fine_amount - sum(p.amount for p in d.payments if p.at < due), 2)
    overdue = (local_day(settled_at, settings) - local_day(due, settings)).days + 1
    fee = late_fee(outstanding, overdue, settings)
    return {"decision_no": d.decision_no, "last_day": _last_day(due), "paid_at": _iso(settled_at),
            "outstanding_at_due": outstanding, "overdue_days": overdue,
            "late_fee_rate_per_day": settings.late_fee_rate_per_day, "late_fee": fee,
            "late_fee_capped": fee >= outstanding, "late_fee_paid": round(sum(p.late_fee for p in d.payments), 2)}


def resolutions(case: Case, settings: PenaltySettings) -> dict[str, dict[str, Any]]:
    """How findings that stop holding were settled, by finding key: evidence and message for the
    `finding.resolved` notice (a fine paid late: the late fee at the payment date)."""
    d = case.decision
    late = late_payment(d, settings) if d and not d.revoked else None
    if late is None:
        return {}
    unpaid_fee = round(late["late_fee"] - late["late_fee_paid"], 2)
    message = (f"罚款已于 {late['paid_at'][:10]} 缴清，逾期 {late['overdue_days']} 日，应加处罚款 {late['late_fee']:g} 元"
               + (f"（已缴 {late['late_fee_paid']:g} 元，尚欠 {unpaid_fee:g} 元）" if unpaid_fee > 0 else "（已缴清）"))
    key = Finding(PAYMENT_OVERDUE, SEVERITY[PAYMENT_OVERDUE], _dept(case), "case", case.case_id, case.decisions[-1].at).key
    return {key: {"evidence": {**late, "late_fee_unpaid": unpaid_fee}, "message": message}}


def check_payment(case, facts, settings, as_of, calendar) -> list[Finding]:
    """The fine is paid within 15 days of service (Art. 67); late fee 3%/day, capped (Art. 72)."""
    d = case.decision
    if not d or d.revoked or d.fine_amount <= 0 or not d.effective_served_at:
        return []
    outstanding = round(d.fine_amount - d.paid_amount, 2)
    due = days_due(d.effective_served_at, settings.payment_days, settings)
    if outstanding <= 0 or as_of < due or settling_until(case, settings, as_of):
        return []
    overdue = (local_day(as_of, settings) - local_day(due, settings)).days + 1
    fee = late_fee(outstanding, overdue, settings)
    return _finding(PAYMENT_OVERDUE, case, as_of, f"罚款逾期 {overdue} 日未缴纳，可加处罚款 {fee:g} 元",
                    decision_no=d.decision_no, fine_amount=d.fine_amount, paid_amount=d.paid_amount,
                    outstanding=outstanding, served_at=_iso(d.effective_served_at), last_day=_last_day(due),
                    overdue_days=overdue, late_fee_rate_per_day=settings.late_fee_rate_per_day, late_fee=fee,
                    late_fee_capped=fee >= outstanding)


def check_av(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Seizure and forced demolition are recorded on audio-video in full (seed 002)."""
    missing = [{"event_id": a.event_id, "at": _iso(a.at), "act_kind": a.kind} for a in case.acts
               if a.kind in settings.av_mandatory_kinds and not a.av_recorded]
    if not missing:
        return []
    return _finding(AV_MISSING, case, as_of, f"{len(missing)} 次查封扣押或强制拆除未进行全程音像记录", acts=missing)


def double_fine_checked(revoked: bool, fine_amount: float | None, party_id: str | None, act_code: str | None) -> bool:
    """Whether `check_double_fine` looks for a decision's party's other decisions: a fine, not revoked,
    naming the party and the act."""
    return not revoked and (fine_amount or 0) > 0 and bool(party_id) and bool(act_code)


def check_double_fine(case, facts, settings, as_of, calendar) -> list[Finding]:
    """One illegal act is not fined twice (Art. 29): same party, same act, another case."""
    d = case.decision
    if not d or not double_fine_checked(d.revoked, d.fine_amount, d.party.get("id"), d.act_code):
        return []
    window = timedelta(days=settings.duplicate_fine_window_days)
    hits = []
    for other in facts.other_decisions:
        at = parse_time(other.get("decided_at"))
        fined = (other.get("fine_amount") or 0) > 0 or "fine" in (other.get("kinds") or ())
        if (other.get("case_id") == case.case_id or other.get("revoked") or not fined or at is None
                or other.get("party_id") != d.party["id"] or other.get("act_code") != d.act_code
                or abs(at - d.at) > window):
            continue
        hits.append({"case_id": other.get("case_id"), "dept": other.get("dept"),
                     "decision_no": other.get("decision_no"), "decided_at": _iso(at),
                     "fine_amount": other.get("fine_amount")})
    if not hits:
        return []
    depts = "、".join(sorted({str(h["dept"]) for h in hits}))
    return _finding(DOUBLE_FINE, case, as_of, f"同一违法行为已被 {depts} 罚款，不得再次罚款",
                    party_id=d.party["id"], act_code=d.act_code, decision_no=d.decision_no, others=hits,
                    window_days=settings.duplicate_fine_window_days)


def check_crime_handover(case, facts, settings, as_of, calendar) -> list[Finding]:
    """以罚代刑 (Art. 27; 国务院令第310号 Art. 11): a crime threshold reached, penalised, not handed over.

    A threshold applies by the legal basis the decided item cites (services/common/crime.py), so
    any department's item on that law and article triggers it, not only the plugin's item codes.
    """
    d = case.decision
    if not d or d.revoked or not d.penalized or case.handovers:
        return []
    view = facts.item(case.dept, d.item_code, d.at) if d.item_code and facts.items is not None else None
    hits = thresholds_reached(facts.crime_thresholds, d.item_code, view.bases if view else (), case.measures)
    if not hits:
        return []
    names = "、".join(str(h["name"]) for h in hits)
    return _finding(CRIME_NO_HANDOVER, case, as_of, f"案件涉嫌{names}，达到刑事追诉标准却仅作行政处罚、未移送公安机关",
                    decision_no=d.decision_no, thresholds=hits)


def check_held_facts(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Facts waiting for a prerequisite longer than the grace period (a stuck or incomplete report)."""
    grace = timedelta(days=settings.held_fact_grace_days)
    stale = [r.to_dict() for r in case.held if r.fact.waiting_since + grace <= as_of]
    if not stale:
        return []
    return _finding(FACT_HELD, case, as_of, f"{len(stale)} 条案件事实缺少前置环节，超过 {settings.held_fact_grace_days} 日未能入账",
                    facts=stale, held_fact_grace_days=settings.held_fact_grace_days)


def check_anomalies(case, facts, settings, as_of, calendar) -> list[Finding]:
    """Facts that contradict the case's own record (e.g. decided after archived)."""
    if not case.anomalies:
        return []
    return _finding(FACT_ANOMALY, case, as_of, f"{len(case.anomalies)} 条案件事实与办案流程不符",
                    facts=[r.to_dict() for r in case.anomalies])


RULES: tuple[tuple[str, Rule], ...] = (
    (OFFICERS_MIN, check_officers),
    (OFFICER_CREDENTIAL, check_credentials),
    (ITEM_NOT_HELD, check_item),
    (FILING_LATE, check_filing),
    (DECISION_OVERDUE, check_decision_deadline),
    (HEARING_NOT_NOTIFIED, check_hearing_notice),
    (HEARING_WINDOW, check_hearing_window),
    (LEGAL_REVIEW_MISSING, check_legal_review),
    (COLLECTIVE_MISSING, check_collective),
    (FINE_OUT_OF_TIER, check_fine_tier),
    (SIMPLE_OVER_LIMIT, check_simple_limit),
    (SERVICE_LATE, check_service),
    (PUBLICATION_LATE, check_publication),
    (WITHDRAWAL_LATE, check_withdrawal),
    (MAJOR_NOT_FILED, check_major_filing),
    (PAYMENT_OVERDUE, check_payment),
    (AV_MISSING, check_av),
    (DOUBLE_FINE, check_double_fine),
    (CRIME_NO_HANDOVER, check_crime_handover),
    (FACT_HELD, check_held_facts),
    (FACT_ANOMALY, check_anomalies),
)
RULE_IDS = tuple(rule_id for rule_id, _ in RULES)
_LOG_RULES = {FACT_HELD, FACT_ANOMALY}  # the only ones that make sense before the case exists


# rule function -> whether it takes `calendar` (read from its signature once). A plain dict is a
# cheaper look-up than a WeakKeyDictionary (which makes a weak reference per call, 21 per evaluation);
# rule functions live as long as their plugin host, and the memo is emptied past WANTS_CALENDAR_KEPT
# (hosts re-built, e.g. in tests) so it never grows without bound.
_WANTS_CALENDAR: dict[Callable, bool] = {}
WANTS_CALENDAR_KEPT = 4096


def wants_calendar(fn: Callable) -> bool:
    """Whether the rule `fn` takes `calendar` (the built-in rules do; a plugin rule may ask for it)."""
    try:
        return _WANTS_CALENDAR[fn]
    except KeyError:
        pass
    except TypeError:  # (an unhashable callable: asked every time)
        return _takes_calendar(fn)
    if len(_WANTS_CALENDAR) >= WANTS_CALENDAR_KEPT:
        _WANTS_CALENDAR.clear()
    found = _WANTS_CALENDAR[fn] = _takes_calendar(fn)
    return found


def _takes_calendar(fn: Callable) -> bool:
    try:
        return "calendar" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def evaluate(case: Case, facts: CaseFacts, settings: PenaltySettings, as_of: datetime,
             calendar: WorkdayCalendar, extra_rules: Iterable[tuple[str, Callable]] = (),
             rules: Iterable[tuple[str, Callable]] | None = None) -> list[Finding]:
    """Run every rule for one case at `as_of`: `rules` ((rule_id, fn) pairs from the plugin host,
    built-ins included; default the built-in RULES), then `extra_rules`.

    Before the case exists (facts held for a filing that has not arrived) only the rules about the
    fact log itself run (PEN-FACT-HELD, PEN-FACT-ANOMALY).
    """
    if as_of.utcoffset() is None:
        raise DomainError("评估时间必须带时区", code="naive_datetime", field="as_of")
    findings: list[Finding] = []
    exists = case.exists  # (once, not per rule)
    for rule_id, fn in [*(RULES if rules is None else rules), *extra_rules]:
        if exists or rule_id in _LOG_RULES:  # plugin rules may ask for `calendar` by keyword
            found = fn(case, facts, settings, as_of, calendar=calendar) if wants_calendar(fn) else \
                fn(case, facts, settings, as_of)
            findings.extend(found or ())
    return findings


# the rules of this module that wait while the case's facts are still arriving (`settling_until`)
WAITING_RULES = frozenset({DECISION_OVERDUE, SERVICE_LATE, PUBLICATION_LATE, MAJOR_NOT_FILED, PAYMENT_OVERDUE,
                           WITHDRAWAL_LATE})


def due_dates(case: Case, settings: PenaltySettings, calendar: WorkdayCalendar,
              after: datetime | None = None, others_wait: bool = True) -> dict[str, datetime]:
    """For each open obligation, the instant its rule would newly fire with no new fact.

    A stopped clock (open suspension, testing or hearing) has no due date: the fact that restarts
    it triggers a new evaluation. With `after`, instants at or before it are left out.

    The instant the arrivals settle ("settled") is one only while a rule that waits for them has an
    obligation open (WAITING_RULES; a case filed and not decided waits even with its clock stopped):
    on a case with every such obligation met, judging it again then finds what was found at its last
    fact — a re-judgement the deadline sweep would make, one case at a time, after every case's facts.
    `others_wait`: rules from elsewhere (a department plugin's) may wait for the arrivals too; then the
    settle instant is always one.
    """
    found: dict[str, list[datetime]] = {}
    waiting = others_wait or bool(case.filed_at and not case.decisions and not case.closed_at)

    def add(rule_id: str, at: datetime | None) -> None:
        nonlocal waiting
        if at is not None and rule_id in WAITING_RULES:
            waiting = True
        if at is not None and (after is None or at > after):
            found.setdefault(rule_id, []).append(at)

    clock_running = all(end is not None for _, end in case.excluded_intervals())
    if case.filed_at and not case.decisions and not case.closed_at and clock_running:
        add(DECISION_OVERDUE, decision_due(case, settings, case.last_at or case.filed_at))
    d = case.decision
    if d and not d.revoked:
        if not d.on_spot and not d.served_at:
            add(SERVICE_LATE, workdays_due(d.at, settings.service_wd, settings, calendar))
        if publication_required(d, settings) and not d.published_at:
            wd = settings.publication_penalty_wd if d.penalized else settings.publication_other_wd
            add(PUBLICATION_LATE, workdays_due(d.at, wd, settings, calendar))
        if major_reasons(d, settings) and not d.major_filed_at:
            add(MAJOR_NOT_FILED, days_due(d.at, settings.major_filing_days, settings))
        if round(d.fine_amount - d.paid_amount, 2) > 0 and d.effective_served_at:
            add(PAYMENT_OVERDUE, days_due(d.effective_served_at, settings.payment_days, settings))
    for old in case.decisions:
        if old.revoked_at and old.published_at and not old.withdrawn_at:
            add(WITHDRAWAL_LATE, workdays_due(old.revoked_at, settings.withdrawal_wd, settings, calendar))
    for held in case.held:
        add(FACT_HELD, held.fact.waiting_since + timedelta(days=settings.held_fact_grace_days))
    if case.last_received_at is not None and waiting:  # judge the open obligations again once the arrivals settle
        add("settled", arrivals.settles_at(case.last_received_at, settings.arrival_settle_seconds))
    return {rule_id: min(ats) for rule_id, ats in found.items()}
