"""Criminal-justice handover (行政执法与刑事司法衔接, 两法衔接): the pure domain.

One aggregate per suspected crime (`handover_id`), linked to its penalty case (`case_id`), folded
from the steps of 《行政执法机关移送涉嫌犯罪案件的规定》(国务院令第310号, revised 2020) as facts
reported by three kinds of party:

- the enforcement department (行政执法机关, e.g. `511322-scjg`) that owns the handover;
- the police (公安机关, e.g. `511322-ga`) the case was transferred (or forwarded) to;
- the procuratorate (人民检察院, e.g. `511322-jcy`) that got the copy or the suggestion of
  立案监督.

A party's kind comes from its department code's short name (settings `police_short_names`,
`procuratorate_short_names`); police and procuratorate are not departments of the county, and they
may only publish their own steps for handovers addressed to them (`admit`, code `not_addressee`).

Every deadline is a pure function of the step's instant and the settings: "24小时" is 24 hours
from the instant (`hours_deadline`); "N日" is N natural days, the starting day not counted, the
period ending at 24:00 of its last day, and a last day that is a rest day or holiday moves to the
next working day (`days_deadline`; 《刑事诉讼法》Art. 105, 《民法典》Arts. 201, 203). No I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from services.common import crime
from services.common.chinatime import aware, day_start, iso_local, local_date, parse_time
from services.common.errors import DomainError, IllegalTransitionError, InvalidFactError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau, short_name
from services.common.settings import SettingsBase
from services.common.workdays import DEFAULT_CALENDAR, WorkdayCalendar

DEPARTMENT, POLICE, PROCURATORATE, SUPERVISOR = "department", "police", "procuratorate", "justice_bureau"
PARTY_LABELS = {DEPARTMENT: "行政执法机关", POLICE: "公安机关", PROCURATORATE: "人民检察院", SUPERVISOR: "司法行政机关"}

DOCUMENT_KINDS = ("transfer_letter", "investigation_report", "exhibit_list", "appraisal_report", "other")
DOCUMENT_LABELS = {"transfer_letter": "涉嫌犯罪案件移送书", "investigation_report": "涉嫌犯罪案件情况的调查报告",
                   "exhibit_list": "涉案物品清单", "appraisal_report": "检验报告或者鉴定意见", "other": "其他材料"}
SUPERVISION_OUTCOMES = ("notice_to_open", "refusal_upheld")
OPEN_MODES = ("opened", "reopened")


@dataclass(frozen=True)
class HandoverSettings(SettingsBase):
    """Every number and vocabulary a handover rule uses; presets and plugins override by name."""

    SECTION: ClassVar[str] = "handover"
    TUPLE_FIELDS: ClassVar[frozenset[str]] = frozenset({
        "police_short_names", "procuratorate_short_names", "required_documents", "suspended_kinds"})

    min_team_officers: int = 2          # Art. 5: a team of 2 or more officers
    head_decision_days: int = 3         # Art. 5: the head decides within 3 days of the report
    transfer_hours: int = 24            # Art. 5: transfer within 24 hours of approval
    copy_hours: int = 24                # Art. 5 "同时抄送": copy recorded within this many hours (our reading)
    forward_hours: int = 24             # Art. 7: forward to the competent police within 24 hours
    police_decision_days: int = 3       # Art. 8: the police decide within 3 days of accepting
    review_request_days: int = 3        # Art. 9: review asked within 3 days of the refusal notice
    review_answer_days: int = 3         # Art. 9: the police answer within 3 days
    suggestion_days: int = 3            # Art. 9: suggest 立案监督 within 3 days
    exhibits_days: int = 3              # Art. 12: exhibits handed over within 3 days of the opening notice
    reverse_filing_wd: int = 15         # Arts. 10, 13 "依法作出处理": open/reopen the penalty case (working days;
                                        # 《市场监督管理行政处罚程序规定》Art. 18 filing limit as the default)
    roll_over_holidays: bool = True     # a day period ending on a rest day/holiday ends on the next working day
    held_fact_grace_days: int = 3       # a step waiting for its prerequisite longer is reported
    police_short_names: tuple[str, ...] = ("ga",)
    procuratorate_short_names: tuple[str, ...] = ("jcy",)
    required_documents: tuple[str, ...] = ("transfer_letter", "investigation_report", "exhibit_list")
    suspended_kinds: tuple[str, ...] = ("fine",)  # 《行政处罚法》Art. 35: no fine after the transfer

    def check(self) -> None:
        numbers = ("min_team_officers", "head_decision_days", "transfer_hours", "copy_hours", "forward_hours",
                   "police_decision_days", "review_request_days", "review_answer_days", "suggestion_days",
                   "exhibits_days", "reverse_filing_wd", "held_fact_grace_days")
        for name in numbers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"handover setting {name} must be a non-negative integer, got {value!r}")
        if set(self.police_short_names) & set(self.procuratorate_short_names):
            raise ValueError("handover settings: a short name cannot be both police and procuratorate")
        unknown = set(self.required_documents) - set(DOCUMENT_KINDS)
        if unknown:
            raise ValueError(f"handover settings: unknown document kinds {sorted(unknown)}")


DEFAULT_SETTINGS = HandoverSettings()


class NotAddresseeError(DomainError):
    """A police or procuratorate step from a party the handover is not addressed to (or a party
    publishing a step that is not its own)."""

    code = "not_addressee"

    def __init__(self, message: str, *, addressee: str | None = None, field: str | None = "dept"):
        super().__init__(message, field=field)
        self.addressee = addressee


# ---- parties and deadlines (pure functions, configurable numbers) ------------------------------

def party_kind(dept: str | None, settings: HandoverSettings = DEFAULT_SETTINGS) -> str:
    """'511322-ga' -> police, '511322-jcy' -> procuratorate, '511322-sfj' -> justice_bureau, else department."""
    name = short_name(dept)
    if name in settings.police_short_names:
        return POLICE
    if name in settings.procuratorate_short_names:
        return PROCURATORATE
    if is_justice_bureau(dept):
        return SUPERVISOR
    return DEPARTMENT


def hours_deadline(start: datetime, hours: int) -> datetime:
    """"N小时": exactly N hours after the instant `start`."""
    return aware(start, "start") + timedelta(hours=hours)


def days_deadline(start: datetime, days: int, *, roll_over_holidays: bool = True,
                  calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime:
    """"N日": the instant the period ends (exclusive) — 24:00 China time of its last day.

    The day of `start` is not counted (《刑事诉讼法》Art. 105; 《民法典》Art. 201), so the last day is
    the N-th calendar day after it; a last day that is a rest day or holiday moves to the next
    working day when `roll_over_holidays` (Art. 105 para. 4; 《民法典》Art. 203).
    """
    last = local_date(aware(start, "start")) + timedelta(days=days)
    if roll_over_holidays:
        while not calendar.is_workday(last):
            last += timedelta(days=1)
    return day_start(last + timedelta(days=1))


def workdays_deadline(start: datetime, workdays: int, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime:
    """"N个工作日": 24:00 of the N-th working day after the day of `start`."""
    return day_start(calendar.add_workdays(local_date(aware(start, "start")), workdays) + timedelta(days=1))


def days_due(start: datetime, days: int, settings: HandoverSettings,
             calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime:
    return days_deadline(start, days, roll_over_holidays=settings.roll_over_holidays, calendar=calendar)


# ---- the aggregate ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    party: frozenset[str]
    label: str


STEPS: dict[str, Step] = {
    "handover.suspicion_raised": Step(frozenset({DEPARTMENT}), "专案组提出涉嫌犯罪移送书面报告"),
    "handover.head_decided": Step(frozenset({DEPARTMENT}), "机关正职负责人作出是否移送决定"),
    "handover.transferred": Step(frozenset({DEPARTMENT}), "移送公安机关"),
    "handover.copied": Step(frozenset({DEPARTMENT}), "抄送人民检察院"),
    "handover.received": Step(frozenset({POLICE}), "公安机关签收回执"),
    "handover.forwarded": Step(frozenset({POLICE}), "公安机关转送有管辖权的机关"),
    "handover.police_decided": Step(frozenset({POLICE}), "公安机关决定立案或者不予立案"),
    "handover.review_requested": Step(frozenset({DEPARTMENT}), "提请公安机关复议"),
    "handover.review_answered": Step(frozenset({POLICE}), "公安机关作出复议决定"),
    "handover.supervision_suggested": Step(frozenset({DEPARTMENT}), "建议人民检察院立案监督"),
    "handover.supervision_outcome": Step(frozenset({PROCURATORATE}), "人民检察院立案监督结果"),
    "handover.exhibits_handed_over": Step(frozenset({DEPARTMENT}), "移交涉案物品及材料"),
    "handover.returned": Step(frozenset({POLICE, PROCURATORATE}), "反向移送行政执法机关（不追究刑事责任）"),
    "handover.penalty_case_opened": Step(frozenset({DEPARTMENT}), "行政执法机关立案（恢复）行政处罚"),
}
FACT_TYPES = tuple(STEPS)


@dataclass
class Entry:
    """One step of the full-process record: what, when, who."""

    type: str
    at: datetime
    by: str
    event_id: str

    def to_dict(self) -> dict:
        return {"type": self.type, "label": STEPS[self.type].label, "at": iso_local(self.at), "by": self.by,
                "party": None, "event_id": self.event_id}


@dataclass
class Aside:
    """A step not applied: held (its prerequisite is not in the log yet) or an anomaly."""

    event_id: str
    type: str
    at: datetime
    by: str
    code: str
    reason: str

    def to_dict(self) -> dict:
        return {"event_id": self.event_id, "type": self.type, "at": iso_local(self.at), "by": self.by,
                "code": self.code, "reason": self.reason}


@dataclass
class Decision:
    at: datetime
    by: str
    opened: bool
    reasons: str = ""
    notice_no: str = ""


@dataclass
class Handover:
    handover_id: str
    dept: str | None = None                 # the enforcement department that owns it
    origin: str | None = None               # "department" (移送) or "reverse" (a police/procuratorate case returned)
    case_id: str | None = None
    suspected_crime: str = ""
    raised_at: datetime | None = None
    officers: tuple[str, ...] = ()
    report_ref: str = ""
    head_decided_at: datetime | None = None
    head_approved: bool | None = None
    head: str = ""
    head_reasons: str = ""
    transferred_at: datetime | None = None
    documents: tuple[str, ...] = ()
    appraisal_required: bool = False
    addressees: list[tuple[datetime, str, str]] = field(default_factory=list)   # (since, police dept, unit)
    receipts: list[tuple[datetime, str]] = field(default_factory=list)           # (at, police dept)
    forwards: list[tuple[datetime, str, str]] = field(default_factory=list)      # (at, from, to)
    copies: list[tuple[datetime, str]] = field(default_factory=list)             # (at, procuratorate)
    decisions: list[Decision] = field(default_factory=list)                      # police decisions
    review_requested_at: datetime | None = None
    review_answer: Decision | None = None
    suggested_at: datetime | None = None
    suggested_to: str | None = None
    supervision_at: datetime | None = None
    supervision_outcome: str | None = None
    exhibits_at: datetime | None = None
    returned_at: datetime | None = None
    returned_by: str | None = None
    return_reason: str = ""
    penalty_opened_at: datetime | None = None
    penalty_case_id: str | None = None
    penalty_open_mode: str | None = None
    record: list[Entry] = field(default_factory=list)
    held: list[Aside] = field(default_factory=list)
    anomalies: list[Aside] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    facts: tuple[Fact, ...] = ()            # what it was folded from (commands fold one more)

    # -- who it is addressed to --
    @property
    def police(self) -> str | None:
        """The police unit it is addressed to now (after any forwarding)."""
        return self.addressees[-1][1] if self.addressees else None

    @property
    def former_police(self) -> tuple[str, ...]:
        """Police units it was addressed to before (and forwarded away from)."""
        return tuple(a[1] for a in self.addressees[:-1] if a[1] != self.police)

    @property
    def may_forward(self) -> bool:
        """Could the current police unit still forward it (it has neither decided nor returned it)?"""
        return (self.police is not None and not any(d.by == self.police for d in self.decisions)
                and self.returned_at is None)

    @property
    def procuratorates(self) -> tuple[str, ...]:
        found = [p for _, p in self.copies] + ([self.suggested_to] if self.suggested_to else [])
        return tuple(dict.fromkeys(found))

    @property
    def parties(self) -> list[str]:
        found = [self.dept] + [a[1] for a in self.addressees] + list(self.procuratorates) + [self.returned_by]
        return [p for p in dict.fromkeys(found) if p]

    @property
    def addressed_at(self) -> datetime | None:
        """When the current police unit got it (transfer or forwarding)."""
        return self.addressees[-1][0] if self.addressees else None

    def accepted_at(self) -> datetime | None:
        """When the current police unit accepted it: its receipt, else the moment it was addressed."""
        if not self.addressees:
            return None
        since, police, _ = self.addressees[-1]
        mine = [at for at, by in self.receipts if by == police and at >= since]
        return min(mine) if mine else since

    @property
    def decision(self) -> Decision | None:
        """The police's first decision on the case (the one Art. 8's 3 days govern)."""
        return self.decisions[0] if self.decisions else None

    @property
    def refusal(self) -> Decision | None:
        return self.decision if self.decision and not self.decision.opened else None

    @property
    def opened_at(self) -> datetime | None:
        """When the police opened a criminal case (decision, review answer or a later decision)."""
        times = [d.at for d in self.decisions if d.opened]
        if self.review_answer and self.review_answer.opened:
            times.append(self.review_answer.at)
        return min(times) if times else None

    @property
    def refused_finally_at(self) -> datetime | None:
        """When the criminal route ended without a case: returned, or refused and not reopened."""
        if self.opened_at is not None:
            return None
        if self.returned_at is not None:
            return self.returned_at
        if self.review_answer is not None:
            return self.review_answer.at
        return self.refusal.at if self.refusal else None

    @property
    def status(self) -> str:
        if self.penalty_opened_at:
            return "penalty_case_opened"
        if self.returned_at:
            return "returned"
        if self.opened_at:
            return "criminal_case_opened" if self.exhibits_at else "police_opened"
        if self.supervision_outcome:
            return "supervised"
        if self.suggested_at:
            return "supervision_suggested"
        if self.review_answer:
            return "review_answered"
        if self.review_requested_at:
            return "review_requested"
        if self.decision:
            return "police_refused"
        if self.receipts:
            return "received"
        if self.transferred_at:
            return "transferred"
        if self.head_decided_at:
            return "approved" if self.head_approved else "not_approved"
        if self.raised_at:
            return "raised"
        return "unknown"

    @property
    def ended(self) -> bool:
        return self.status in ("criminal_case_opened", "penalty_case_opened", "not_approved")


STATUS_LABELS = {
    "raised": "已提出移送报告", "not_approved": "负责人不批准移送", "approved": "已批准移送", "transferred": "已移送公安机关",
    "received": "公安机关已接收", "police_refused": "公安机关不予立案", "review_requested": "已提请复议",
    "review_answered": "公安机关已复议", "supervision_suggested": "已建议立案监督", "supervised": "检察院已监督",
    "police_opened": "公安机关已立案（待移交涉案物品）", "criminal_case_opened": "已立案侦查（衔接完成）",
    "returned": "已反向移送行政执法机关", "penalty_case_opened": "已立案（恢复）行政处罚", "unknown": "未知",
}


def _text(p: Mapping[str, Any], key: str) -> str:
    return str(p.get(key) or "").strip()


class _Refused(Exception):
    def __init__(self, code: str, reason: str):
        self.code, self.reason = code, reason


def _expect(condition: Any, reason: str, code: str = "missing_prerequisite") -> None:
    if not condition:
        raise _Refused(code, reason)


def _check_party(h: Handover, fact: Fact, settings: HandoverSettings) -> None:
    """Raise _Refused('not_addressee' / 'not_owner' / 'waiting_addressee') when `fact.dept` may not report it."""
    step = STEPS[fact.type]
    kind = party_kind(fact.dept, settings)
    if kind not in step.party:
        who = "、".join(PARTY_LABELS[k] for k in sorted(step.party))
        raise _Refused("not_addressee", f"“{step.label}”只能由{who}报送，{fact.dept}（{PARTY_LABELS[kind]}）无权报送")
    if kind == DEPARTMENT:
        if h.dept and fact.dept != h.dept:
            raise _Refused("not_owner", f"移送案件 {h.handover_id} 属于 {h.dept}，{fact.dept} 无权报送其环节")
        return
    if fact.type == "handover.returned" and h.origin is None:
        return  # a police/procuratorate case returned to a department: it opens the handover
    if kind == POLICE:
        if h.police is None:
            raise _Refused("waiting_addressee", f"移送案件 {h.handover_id} 尚无移送记录，无法确认接收的公安机关")
        if fact.dept != h.police:
            reason = f"移送案件 {h.handover_id} 移送（转送）给 {h.police}，{fact.dept} 不是接收机关"
            if fact.dept in h.former_police or not h.may_forward:
                raise _Refused("not_addressee", reason)
            # the addressee may still forward it to this unit: the forwarding (another publisher) may be in flight
            raise _Refused("waiting_addressee", f"{reason}（尚无转送给 {fact.dept} 的记录）")
        return
    known = h.procuratorates
    if fact.dept in known:
        return
    reason = f"移送案件 {h.handover_id} 抄送（建议）的检察院为 {'、'.join(known) or '无'}，{fact.dept} 无权报送"
    if h.suggested_to is not None:
        raise _Refused("not_addressee", reason)
    # a copy or a suggestion naming this procuratorate (the department's report) may still arrive
    raise _Refused("waiting_addressee", reason)


def _apply_step(h: Handover, fact: Fact, settings: HandoverSettings) -> None:
    p, t, at, by = fact.payload, fact.type, fact.occurred_at, fact.dept
    if t == "handover.suspicion_raised":
        _expect(h.raised_at is None and h.origin is None, "该移送案件已提出过移送报告", "already_done")
        h.origin, h.dept, h.raised_at = DEPARTMENT, by, at
        h.case_id = _text(p, "case_id") or h.case_id
        h.suspected_crime = _text(p, "suspected_crime")
        h.officers = tuple(dict.fromkeys(str(o) for o in p.get("officers") or ()))
        h.report_ref = _text(p, "report_ref")
    elif t == "handover.head_decided":
        _expect(h.raised_at, "尚无移送书面报告")
        _expect(h.head_decided_at is None, "负责人已作出决定", "already_done")
        h.head_decided_at, h.head_approved = at, bool(p.get("approved"))
        h.head, h.head_reasons = _text(p, "head"), _text(p, "reasons")
    elif t == "handover.transferred":
        _expect(h.head_approved, "负责人尚未批准移送")
        _expect(h.transferred_at is None, "已移送", "already_done")
        police = str(p["police_dept"])
        _expect(party_kind(police, settings) == POLICE, f"移送对象 {police} 不是公安机关", "invalid_fact")
        h.transferred_at = at
        h.documents = tuple(dict.fromkeys(str(d) for d in p.get("documents") or ()))
        h.appraisal_required = bool(p.get("appraisal_required"))
        h.addressees.append((at, police, _text(p, "police_unit")))
        if p.get("copy_to"):
            h.copies.append((at, str(p["copy_to"])))
    elif t == "handover.copied":
        _expect(h.transferred_at, "尚未移送公安机关")
        h.copies.append((at, str(p["procuratorate_dept"])))
    elif t == "handover.received":
        since = h.addressed_at or at
        _expect(not any(who == by and when >= since for when, who in h.receipts), "已签收", "already_done")
        h.receipts.append((at, by))
    elif t == "handover.forwarded":
        _expect(h.decision is None, "公安机关已作出立案决定，不能再转送", "illegal_transition")
        to = str(p["to_police_dept"])
        _expect(party_kind(to, settings) == POLICE and to != by, f"转送对象 {to} 不是其他公安机关", "invalid_fact")
        h.forwards.append((at, by, to))
        h.addressees.append((at, to, _text(p, "to_police_unit")))
    elif t == "handover.police_decided":
        _expect(not h.decisions or not h.decisions[-1].opened, "公安机关已决定立案", "already_done")
        _expect(not h.decisions or h.review_answer is not None or h.supervision_outcome == "notice_to_open",
                "公安机关已作出决定；再次决定须在复议或立案监督之后", "already_done")
        h.decisions.append(Decision(at, by, bool(p.get("opened")), _text(p, "reasons"), _text(p, "notice_no")))
    elif t == "handover.review_requested":
        _expect(h.refusal is not None, "公安机关尚未作出不予立案决定")
        _expect(h.review_requested_at is None, "已提请复议", "already_done")
        h.review_requested_at = at
    elif t == "handover.review_answered":
        _expect(h.review_requested_at is not None, "尚未提请复议")
        _expect(h.review_answer is None, "已作出复议决定", "already_done")
        h.review_answer = Decision(at, by, bool(p.get("opened")), _text(p, "reasons"), _text(p, "notice_no"))
    elif t == "handover.supervision_suggested":
        _expect(h.refusal is not None, "公安机关尚未作出不予立案决定")
        _expect(h.suggested_at is None, "已建议立案监督", "already_done")
        target = str(p["procuratorate_dept"])
        _expect(party_kind(target, settings) == PROCURATORATE, f"{target} 不是人民检察院", "invalid_fact")
        h.suggested_at, h.suggested_to = at, target
    elif t == "handover.supervision_outcome":
        _expect(h.suggested_at is not None, "尚未建议立案监督")
        _expect(h.supervision_outcome is None, "已有立案监督结果", "already_done")
        h.supervision_at, h.supervision_outcome = at, str(p["outcome"])
    elif t == "handover.exhibits_handed_over":
        _expect(h.opened_at is not None, "公安机关尚未决定立案")
        _expect(h.exhibits_at is None, "已移交涉案物品", "already_done")
        h.exhibits_at = at
    elif t == "handover.returned":
        _expect(h.returned_at is None, "已反向移送", "already_done")
        to = str(p["to_dept"])
        _expect(party_kind(to, settings) == DEPARTMENT, f"反向移送对象 {to} 不是行政执法机关", "invalid_fact")
        if h.origin is None:
            h.origin, h.dept = "reverse", to
            h.case_id = _text(p, "case_id") or h.case_id
            h.suspected_crime = _text(p, "suspected_crime")
        else:
            _expect(str(p["to_dept"]) == h.dept, f"反向移送对象应为原移送机关 {h.dept}", "invalid_fact")
        h.returned_at, h.returned_by, h.return_reason = at, by, _text(p, "reason")
    elif t == "handover.penalty_case_opened":
        _expect(h.refused_finally_at is not None, "尚无反向移送或不予立案决定")
        _expect(h.penalty_opened_at is None, "已立案（恢复）行政处罚", "already_done")
        h.penalty_opened_at, h.penalty_case_id = at, str(p["case_id"])
        h.penalty_open_mode = str(p.get("mode") or "opened")
        h.case_id = h.case_id or h.penalty_case_id


def _order(fact: Fact) -> tuple:
    return (fact.occurred_at, fact.seq)


def fold(facts: Iterable[Fact], handover_id: str, settings: HandoverSettings = DEFAULT_SETTINGS) -> Handover:
    """The handover as its facts say, folded in time order (arrival order for equal times).

    A step from a party that may not report it is an anomaly (`not_addressee` / `not_owner`) that
    changes nothing; a step whose prerequisite is missing is held (its prerequisite may still
    arrive: folding again puts it in place); a repeated step is an anomaly.
    """
    facts = tuple(sorted(facts, key=_order))
    h = Handover(handover_id, facts=facts)
    waiting: list[tuple[Aside, Fact]] = []
    for fact in facts:
        if fact.type not in STEPS:
            h.anomalies.append(Aside(fact.event_id, fact.type, fact.occurred_at, fact.dept, "unsupported_fact",
                                     f"不是移送案件事实：{fact.type}"))
            continue
        if fact.event_id in h.applied:
            continue
        try:
            _check_party(h, fact, settings)
            _apply_step(h, fact, settings)
        except _Refused as exc:
            aside = Aside(fact.event_id, fact.type, fact.occurred_at, fact.dept, exc.code, exc.reason)
            (h.held if exc.code in ("missing_prerequisite", "waiting_addressee") else h.anomalies).append(aside)
            if exc.code == "waiting_addressee":
                waiting.append((aside, fact))
            continue
        h.applied.append(fact.event_id)
        h.record.append(Entry(fact.type, fact.occurred_at, fact.dept, fact.event_id))
    # a step kept for an addressee that can no longer come (the addressee decided, forwarded it
    # elsewhere, the suggestion went to another procuratorate) is judged now: not addressed
    for aside, fact in waiting:
        try:
            _check_party(h, fact, settings)
        except _Refused as exc:
            if exc.code == "not_addressee":
                h.held.remove(aside)
                h.anomalies.append(Aside(aside.event_id, aside.type, aside.at, aside.by, exc.code, exc.reason))
    return h


def admit(facts: Sequence[Fact], fact: Fact, handover_id: str,
          settings: HandoverSettings = DEFAULT_SETTINGS) -> Handover:
    """The handover with `fact` folded in, or the refusal its publisher hears of.

    NotAddresseeError (`not_addressee`): a police or procuratorate step from a party the handover is
    not addressed to at that time, or any party publishing a step that is not its kind's;
    NotOwnerError (`not_owner`): a department step from another department; InvalidFactError: a
    transfer to a party that is not police, a forwarding or return to the wrong kind. A step that cannot be
    judged yet (no transfer known, so no addressee) is accepted and held until it can.
    """
    after = fold([*facts, fact], handover_id, settings)
    for a in after.anomalies:
        if a.event_id == fact.event_id:
            if a.code == "not_addressee":
                raise NotAddresseeError(a.reason, addressee=after.police)
            if a.code == "not_owner":
                raise NotOwnerError(a.reason, owner=after.dept)
            if a.code == "invalid_fact":
                raise InvalidFactError(a.reason, field="payload")
    return after


def command(current: Handover | None, fact: Fact, handover_id: str,
            settings: HandoverSettings = DEFAULT_SETTINGS) -> Fact:
    """A step ordered inside Zhifa (网上办案) on the handover as it is now (None: new): strict —
    refused unless it applies now, in order, from its own party."""
    after = admit(current.facts if current is not None else (), fact, handover_id, settings)
    displaced = [e for e in (current.record if current is not None else ()) if e.event_id not in after.applied]
    if displaced:  # dated before steps already recorded, it would undo them: a command never rewrites history
        raise IllegalTransitionError(f"该环节与已记录的“{STEPS[displaced[0].type].label}”（{iso_local(displaced[0].at)}，"
                                     f"{displaced[0].by}）冲突，不能补记在其之前", field="at")
    if fact.event_id in after.applied:
        return fact
    aside = next(a for a in after.held + after.anomalies if a.event_id == fact.event_id)
    if aside.code == "waiting_addressee":  # a command is judged now: not addressed (yet) is not addressed
        raise NotAddresseeError(aside.reason, addressee=after.police)
    raise IllegalTransitionError(aside.reason, field="type")


# ---- the penalty case as the handover service sees it (from penalty's `case.changed`) -----------

@dataclass(frozen=True)
class PenaltyCaseView:
    case_id: str
    dept: str
    revision: int = 0
    item_code: str = ""
    legal_basis: tuple[tuple[str, str], ...] = ()
    measures: Mapping[str, float] = field(default_factory=dict)
    stage: str | None = None
    decision_no: str | None = None
    decided_at: datetime | None = None
    kinds: tuple[str, ...] = ()
    fine_amount: float = 0.0
    revoked: bool = False
    payments: tuple[tuple[datetime, float], ...] = ()
    transferred_at: tuple[datetime, ...] = ()

    @property
    def penalized(self) -> bool:
        return self.decided_at is not None and bool(self.kinds) and not self.revoked

    def paid_before(self, at: datetime) -> float:
        return round(sum(amount for when, amount in self.payments if when <= at), 2)

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> "PenaltyCaseView":
        d = p.get("decision") or {}
        return cls(
            case_id=str(p["case_id"]), dept=str(p.get("dept") or ""), revision=int(p.get("revision") or 0),
            item_code=str(p.get("item_code") or ""),
            legal_basis=tuple((str(b.get("law") or ""), str(b.get("article") or "")) for b in p.get("legal_basis") or ()),
            measures={str(k): float(v) for k, v in (p.get("measures") or {}).items()},
            stage=p.get("stage"), decision_no=d.get("decision_no"), decided_at=parse_time(d.get("decided_at")),
            kinds=tuple(d.get("kinds") or ()), fine_amount=float(d.get("fine_amount") or 0),
            revoked=bool(d.get("revoked")),
            payments=tuple((parse_time(x["at"]), float(x["amount"])) for x in p.get("payments") or ()
                           if parse_time(x.get("at"))),
            transferred_at=tuple(t for t in (parse_time(x) for x in p.get("transferred_at") or ()) if t),
        )


def latest_view(payloads: Iterable[Mapping[str, Any]]) -> PenaltyCaseView | None:
    """The newest `case.changed` snapshot (highest revision, then the last received)."""
    best = None
    for payload in payloads:
        if best is None or int(payload.get("revision") or 0) >= int(best.get("revision") or 0):
            best = payload
    return PenaltyCaseView.from_payload(best) if best is not None else None


def thresholds_reached(view: PenaltyCaseView, thresholds: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Crime thresholds (plugins' `zhifa_crime_thresholds`) that apply to the case — by the law and
    article of its item's legal basis, or its item code — and whose measure it reaches
    (the one matcher penalty uses too: services/common/crime.py)."""
    return crime.thresholds_reached(thresholds, view.item_code, view.legal_basis, view.measures)


# ---- rules --------------------------------------------------------------------------------------

SUSPICION_TEAM = "HOV-SUSPICION-TEAM"
HEAD_DECISION_LATE = "HOV-HEAD-DECISION-LATE"
REFUSED_NO_REASON = "HOV-REFUSED-NO-REASON"
TRANSFER_LATE = "HOV-TRANSFER-LATE"
DOCUMENTS_INCOMPLETE = "HOV-DOCUMENTS-INCOMPLETE"
NO_PROCURATORATE_COPY = "HOV-NO-PROCURATORATE-COPY"
FORWARD_LATE = "HOV-FORWARD-LATE"
POLICE_DECISION_LATE = "HOV-POLICE-DECISION-LATE"
REVIEW_REQUEST_LATE = "HOV-REVIEW-REQUEST-LATE"
REVIEW_ANSWER_LATE = "HOV-REVIEW-ANSWER-LATE"
SUGGESTION_LATE = "HOV-SUGGESTION-LATE"
EXHIBITS_LATE = "HOV-EXHIBITS-LATE"
PENALTY_CONTINUES = "HOV-PENALTY-CONTINUES"
REVERSE_NOT_OPENED = "HOV-REVERSE-NOT-OPENED"
PENALTY_INSTEAD = "HOV-PENALTY-INSTEAD"
FACT_HELD = "HOV-FACT-HELD"
FACT_ANOMALY = "HOV-FACT-ANOMALY"

SEVERITY = {
    SUSPICION_TEAM: "warning", HEAD_DECISION_LATE: "serious", REFUSED_NO_REASON: "critical",
    TRANSFER_LATE: "serious", DOCUMENTS_INCOMPLETE: "warning", NO_PROCURATORATE_COPY: "serious",
    FORWARD_LATE: "warning", POLICE_DECISION_LATE: "serious", REVIEW_REQUEST_LATE: "warning",
    REVIEW_ANSWER_LATE: "serious", SUGGESTION_LATE: "warning", EXHIBITS_LATE: "serious",
    PENALTY_CONTINUES: "serious", REVERSE_NOT_OPENED: "serious", PENALTY_INSTEAD: "critical",
    FACT_HELD: "info", FACT_ANOMALY: "warning",
}
RULE_IDS = tuple(SEVERITY)


@dataclass(frozen=True)
class Deadline:
    """One timed duty: `who` must do `what` by `due`; `done` is when it was done (None: not yet)."""

    rule_id: str
    who: str | None
    start: datetime
    due: datetime
    done: datetime | None
    what: str
    limit: str

    def breached(self, as_of: datetime) -> bool:
        return self.done > self.due if self.done is not None else as_of >= self.due

    def evidence(self, as_of: datetime) -> dict:
        return {"start": iso_local(self.start), "due": iso_local(self.due), "done": iso_local(self.done),
                "limit": self.limit, "state": "late" if self.done else "overdue",
                "overdue_hours": round(((self.done or as_of) - self.due).total_seconds() / 3600, 1)}


def deadlines(h: Handover, settings: HandoverSettings, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> list[Deadline]:
    """Every timed duty of the handover in its current state (done or still open)."""
    s, out = settings, []

    def days(start, n):
        return days_due(start, n, s, calendar)

    if h.raised_at is not None:
        out.append(Deadline(HEAD_DECISION_LATE, h.dept, h.raised_at, days(h.raised_at, s.head_decision_days),
                            h.head_decided_at, "机关负责人作出是否批准移送的决定", f"{s.head_decision_days}日"))
    if h.head_approved and h.head_decided_at is not None:
        out.append(Deadline(TRANSFER_LATE, h.dept, h.head_decided_at,
                            hours_deadline(h.head_decided_at, s.transfer_hours), h.transferred_at,
                            "向公安机关移送", f"{s.transfer_hours}小时"))
    if h.transferred_at is not None:
        first_copy = min((at for at, _ in h.copies), default=None)
        out.append(Deadline(NO_PROCURATORATE_COPY, h.dept, h.transferred_at,
                            hours_deadline(h.transferred_at, s.copy_hours), first_copy,
                            "将移送书及材料目录抄送人民检察院", f"移送同时（{s.copy_hours}小时内）"))
    # forwarding: measured from the forwarding unit's acceptance of the case
    for i, (at, by, _to) in enumerate(h.forwards):
        since = h.addressees[i][0]
        mine = [r for r, who in h.receipts if who == by and r >= since and r <= at]
        start = min(mine) if mine else since
        out.append(Deadline(FORWARD_LATE, by, start, hours_deadline(start, s.forward_hours), at,
                            "转送有管辖权的机关", f"{s.forward_hours}小时"))
    if h.addressees and h.origin == DEPARTMENT:
        start = h.accepted_at()
        done = h.decision.at if h.decision else (h.returned_at if h.returned_by == h.police else None)
        out.append(Deadline(POLICE_DECISION_LATE, h.police, start, days(start, s.police_decision_days), done,
                            "审查并作出立案或者不予立案的决定", f"{s.police_decision_days}日"))
    if h.refusal is not None and h.review_requested_at is not None:
        out.append(Deadline(REVIEW_REQUEST_LATE, h.dept, h.refusal.at, days(h.refusal.at, s.review_request_days),
                            h.review_requested_at, "提请复议", f"{s.review_request_days}日"))
    if h.review_requested_at is not None:
        answered = h.review_answer.at if h.review_answer else None
        out.append(Deadline(REVIEW_ANSWER_LATE, h.refusal.by if h.refusal else h.police, h.review_requested_at,
                            days(h.review_requested_at, s.review_answer_days), answered,
                            "作出立案或者不予立案的复议决定", f"{s.review_answer_days}日"))
    if h.suggested_at is not None and h.refusal is not None:
        base = h.review_answer.at if h.review_answer and not h.review_answer.opened else h.refusal.at
        out.append(Deadline(SUGGESTION_LATE, h.dept, base, days(base, s.suggestion_days), h.suggested_at,
                            "建议人民检察院立案监督", f"{s.suggestion_days}日"))
    if h.opened_at is not None:
        out.append(Deadline(EXHIBITS_LATE, h.dept, h.opened_at, days(h.opened_at, s.exhibits_days), h.exhibits_at,
                            "移交涉案物品及有关材料", f"{s.exhibits_days}日"))
    if h.returned_at is not None:
        out.append(Deadline(REVERSE_NOT_OPENED, h.dept, h.returned_at,
                            workdays_deadline(h.returned_at, s.reverse_filing_wd, calendar), h.penalty_opened_at,
                            "对反向移送的案件立案（恢复）行政处罚", f"{s.reverse_filing_wd}个工作日"))
    return out


MESSAGES = {
    HEAD_DECISION_LATE: "机关负责人未在{limit}内作出是否批准移送的决定",
    TRANSFER_LATE: "批准移送后未在{limit}内移送公安机关",
    NO_PROCURATORATE_COPY: "移送公安机关后未将案件移送书及有关材料目录抄送人民检察院",
    FORWARD_LATE: "公安机关未在{limit}内转送有管辖权的机关",
    POLICE_DECISION_LATE: "公安机关未在{limit}内作出立案或者不予立案的决定",
    REVIEW_REQUEST_LATE: "接到不予立案通知书后超过{limit}才提请复议",
    REVIEW_ANSWER_LATE: "公安机关未在{limit}内作出复议决定",
    SUGGESTION_LATE: "超过{limit}才建议人民检察院立案监督",
    EXHIBITS_LATE: "公安机关立案后未在{limit}内移交涉案物品及有关材料",
    REVERSE_NOT_OPENED: "对公安机关、检察院反向移送的案件，未在{limit}内立案（恢复）行政处罚",
}


def _finding(rule_id: str, h: Handover, dept: str | None, as_of: datetime, message: str, **evidence) -> Finding:
    return Finding(rule_id, SEVERITY[rule_id], dept or h.dept or "", "handover", h.handover_id, as_of,
                   {"handover_id": h.handover_id, "case_id": h.case_id, "owner": h.dept, **evidence}, message)


def evaluate(h: Handover, as_of: datetime, settings: HandoverSettings = DEFAULT_SETTINGS,
             case: PenaltyCaseView | None = None, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> list[Finding]:
    """Every rule of the handover at `as_of`; `case` is its penalty case as penalty published it."""
    as_of = aware(as_of, "as_of")
    found: list[Finding] = []
    if h.raised_at is not None and (len(h.officers) < settings.min_team_officers or not h.report_ref):
        missing = []
        if len(h.officers) < settings.min_team_officers:
            missing.append(f"专案组仅 {len(h.officers)} 名执法人员（应不少于 {settings.min_team_officers} 名）")
        if not h.report_ref:
            missing.append("无书面报告")
        found.append(_finding(SUSPICION_TEAM, h, h.dept, as_of, "涉嫌犯罪案件移送报告不规范：" + "；".join(missing),
                              officers=list(h.officers), report_ref=h.report_ref or None,
                              min_team_officers=settings.min_team_officers))
    if h.head_decided_at is not None and h.head_approved is False and not h.head_reasons:
        found.append(_finding(REFUSED_NO_REASON, h, h.dept, as_of,
                              "机关负责人不批准移送涉嫌犯罪案件且未说明理由（以罚代刑风险）",
                              decided_at=iso_local(h.head_decided_at), head=h.head or None))
    if h.transferred_at is not None:
        required = list(settings.required_documents) + (["appraisal_report"] if h.appraisal_required else [])
        missing_docs = [d for d in required if d not in h.documents]
        if missing_docs:
            found.append(_finding(DOCUMENTS_INCOMPLETE, h, h.dept, as_of,
                                  "移送材料不全：缺少" + "、".join(DOCUMENT_LABELS[d] for d in missing_docs),
                                  missing=missing_docs, documents=list(h.documents)))
    for dl in deadlines(h, settings, calendar):
        if dl.breached(as_of) and not any(f.rule_id == dl.rule_id for f in found):
            found.append(_finding(dl.rule_id, h, dl.who, as_of, MESSAGES[dl.rule_id].format(limit=dl.limit),
                                  party=dl.who, duty=dl.what, **dl.evidence(as_of)))
    if case is not None and h.transferred_at is not None and case.penalized:
        found.extend(_penalty_continues(h, case, as_of, settings))
    grace = timedelta(days=settings.held_fact_grace_days)
    stale = [a.to_dict() for a in h.held if a.at + grace <= as_of]
    if stale:
        found.append(_finding(FACT_HELD, h, h.dept, as_of,
                              f"{len(stale)} 条移送环节缺少前置环节或接收机关，超过 {settings.held_fact_grace_days} 日未能入账",
                              facts=stale, held_fact_grace_days=settings.held_fact_grace_days))
    if h.anomalies:
        found.append(_finding(FACT_ANOMALY, h, h.dept, as_of, f"{len(h.anomalies)} 条移送环节与流程或报送主体不符",
                              facts=[a.to_dict() for a in h.anomalies]))
    return found


def _penalty_continues(h: Handover, case: PenaltyCaseView, as_of: datetime,
                       settings: HandoverSettings) -> list[Finding]:
    """《行政处罚法》Art. 35 / 310号令 Art. 11: after the transfer no fine is imposed while the
    criminal route is open (a fine paid before is deducted from the court's fine later)."""
    decided = case.decided_at
    suspended = [k for k in case.kinds if k in settings.suspended_kinds]
    ended = h.refused_finally_at
    if decided is None or decided <= h.transferred_at or not suspended or (ended is not None and ended <= decided):
        return []
    return [_finding(PENALTY_CONTINUES, h, h.dept, as_of,
                     "案件已移送公安机关，行政机关仍作出罚款决定（应不再给予罚款，已缴罚款由人民法院折抵罚金）",
                     decision_no=case.decision_no, decided_at=iso_local(decided), kinds=list(case.kinds),
                     fine_amount=case.fine_amount, transferred_at=iso_local(h.transferred_at),
                     paid_before_transfer=case.paid_before(h.transferred_at))]


def evaluate_case(case: PenaltyCaseView, handovers: Sequence[Handover], thresholds: Iterable[Mapping[str, Any]],
                  as_of: datetime) -> list[Finding]:
    """以罚代刑 (310号令 Art. 11; 《行政处罚法》Art. 27): the case's facts reach a crime threshold and it
    ends in an administrative penalty with no handover transferred to the police."""
    as_of = aware(as_of, "as_of")
    if not case.penalized:
        return []
    hits = thresholds_reached(case, thresholds)
    if not hits or case.transferred_at or any(x.transferred_at is not None for x in handovers):
        return []
    names = "、".join(str(x["name"]) for x in hits)
    others = [{"handover_id": x.handover_id, "status": x.status, "head_reasons": x.head_reasons or None}
              for x in handovers]
    message = f"案件涉嫌{names}，达到刑事追诉标准却仅作行政处罚、未移送公安机关（以罚代刑）"
    return [Finding(PENALTY_INSTEAD, SEVERITY[PENALTY_INSTEAD], case.dept, "case", case.case_id, as_of,
                    {"case_id": case.case_id, "decision_no": case.decision_no, "decided_at": iso_local(case.decided_at),
                     "kinds": list(case.kinds), "thresholds": hits, "handovers": others}, message)]


def next_due(h: Handover, as_of: datetime, settings: HandoverSettings = DEFAULT_SETTINGS,
             calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime | None:
    """The next instant a rule could change its answer with no new fact (an open duty falls due,
    a held fact passes its grace period)."""
    times = [dl.due for dl in deadlines(h, settings, calendar) if dl.done is None and dl.due > as_of]
    grace = timedelta(days=settings.held_fact_grace_days)
    times += [a.at + grace for a in h.held if a.at + grace > as_of]
    return min(times) if times else None


def fines_to_deduct(h: Handover, case: PenaltyCaseView | None) -> float | None:
    """《行政处罚法》Art. 35: fines the party paid before the transfer, to be deducted from a court fine."""
    if case is None or h.transferred_at is None:
        return None
    return case.paid_before(h.transferred_at)


def to_snapshot(h: Handover, as_of: datetime, settings: HandoverSettings = DEFAULT_SETTINGS,
                case: PenaltyCaseView | None = None, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> dict:
    """The read model: every step with who and when, open duties with their due instants."""
    def dec(d: Decision | None):
        return None if d is None else {"at": iso_local(d.at), "by": d.by, "opened": d.opened, "reasons": d.reasons,
                                       "notice_no": d.notice_no or None}

    record = []
    for e in h.record:
        entry = e.to_dict()
        entry["party"] = party_kind(e.by, settings)
        record.append(entry)
    return {
        "handover_id": h.handover_id, "dept": h.dept, "origin": h.origin, "case_id": h.case_id,
        "status": h.status, "status_label": STATUS_LABELS.get(h.status, h.status), "ended": h.ended,
        "suspected_crime": h.suspected_crime or None, "parties": h.parties,
        "police_dept": h.police, "police_unit": h.addressees[-1][2] if h.addressees else None,
        "procuratorates": list(h.procuratorates),
        "raised": None if h.raised_at is None else {"at": iso_local(h.raised_at), "officers": list(h.officers),
                                                     "report_ref": h.report_ref or None},
        "head_decision": None if h.head_decided_at is None else {
            "at": iso_local(h.head_decided_at), "approved": h.head_approved, "head": h.head or None,
            "reasons": h.head_reasons or None},
        "transfer": None if h.transferred_at is None else {
            "at": iso_local(h.transferred_at), "documents": list(h.documents), "appraisal_required": h.appraisal_required},
        "addressees": [{"since": iso_local(a), "police_dept": b, "police_unit": c or None} for a, b, c in h.addressees],
        "receipts": [{"at": iso_local(a), "by": b} for a, b in h.receipts],
        "copies": [{"at": iso_local(a), "procuratorate_dept": b} for a, b in h.copies],
        "police_decisions": [dec(d) for d in h.decisions],
        "review_requested_at": iso_local(h.review_requested_at), "review_answer": dec(h.review_answer),
        "supervision": None if h.suggested_at is None else {
            "suggested_at": iso_local(h.suggested_at), "procuratorate_dept": h.suggested_to,
            "outcome": h.supervision_outcome, "outcome_at": iso_local(h.supervision_at)},
        "exhibits_at": iso_local(h.exhibits_at),
        "returned": None if h.returned_at is None else {"at": iso_local(h.returned_at), "by": h.returned_by,
                                                        "reason": h.return_reason or None},
        "penalty_case": None if h.penalty_opened_at is None else {
            "at": iso_local(h.penalty_opened_at), "case_id": h.penalty_case_id, "mode": h.penalty_open_mode},
        "fines_to_deduct": fines_to_deduct(h, case),
        "duties": [{"rule_id": d.rule_id, "who": d.who, "what": d.what, "limit": d.limit, "start": iso_local(d.start),
                    "due": iso_local(d.due), "done": iso_local(d.done), "breached": d.breached(as_of)}
                   for d in deadlines(h, settings, calendar)],
        "record": record,
        "held": [a.to_dict() for a in h.held],
        "anomalies": [a.to_dict() for a in h.anomalies],
    }
