"""The penalty case aggregate (行政处罚案件): a state machine folded from the case's fact log.

The fact log is the truth. `fold` sorts it by `occurred_at` and replays it, so departmental
systems may deliver facts in any order:
- a fact whose prerequisite is not in the log yet (served before any decision) is HELD with the
  reason, and simply re-tried on the next fold;
- a fact that contradicts the log even in time order (decided after archived, served before the
  decision it serves) is an ANOMALY with a Chinese reason;
- a repeated event_id is ignored.
Nothing is lost: every distinct fact ends up applied, held or anomalous.

Zhifa's own case handling (网上办案) uses the strict command functions at the bottom: they run
the same guards and raise IllegalTransitionError instead of holding.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

from services.common.chinatime import parse_time
from services.common.errors import DomainError, IllegalTransitionError, NotOwnerError
from services.common.facts import Fact

STAGES = (
    "filed", "investigating", "notified", "hearing_requested", "hearing_held", "legal_review",
    "collective_discussion", "decided", "served", "executed", "closed", "archived",
)
PRE_DECISION = STAGES[:7]
STAGE_LABELS = {
    "filed": "已立案", "investigating": "调查取证", "notified": "已告知", "hearing_requested": "已申请听证",
    "hearing_held": "已听证", "legal_review": "法制审核", "collective_discussion": "集体讨论",
    "decided": "已决定", "served": "已送达", "executed": "已执行", "closed": "已结案", "archived": "已归档",
}

# Wire event types in lifecycle order; the order breaks ties between facts with the same time.
EVENT_LABELS = {
    "case.filed": "立案",
    "case.investigated": "调查取证",
    "case.testing_started": "检验检测鉴定开始",
    "case.testing_completed": "检验检测鉴定完成",
    "case.extended": "办案期限延长",
    "case.notified": "告知",
    "case.hearing_requested": "申请听证",
    "case.hearing_notified": "听证通知",
    "case.hearing_held": "举行听证",
    "case.legal_reviewed": "法制审核",
    "case.collectively_discussed": "集体讨论",
    "case.transferred_to_police": "移送公安机关",
    "case.suspended": "案件中止",
    "case.resumed": "案件恢复",
    "case.decided": "作出处罚决定",
    "case.decided_on_spot": "当场处罚",
    "case.served": "送达",
    "case.paid": "缴纳罚款",
    "case.published": "公示",
    "case.major_penalty_filed": "重大行政处罚备案",
    "case.executed": "执行完毕",
    "case.decision_changed": "变更处罚决定",
    "case.decision_revoked": "撤销处罚决定",
    "case.publication_withdrawn": "撤下公示",
    "case.closed": "结案",
    "case.archived": "归档",
}
EVENT_TYPES = tuple(EVENT_LABELS)
TYPE_ORDER = {t: i for i, t in enumerate(EVENT_TYPES)}

PENALTY_KINDS = (  # 《行政处罚法》Art. 9
    "warning", "criticism", "fine", "confiscation", "licence_suspension", "qualification_lowered",
    "licence_revocation", "business_restricted", "production_stopped", "closure",
    "practice_restricted", "detention", "other",
)
ACT_KINDS = (
    "on_site", "inspection", "evidence", "inquiry", "sampling", "seizure", "forced_demolition",
    "forced_execution", "other",
)
PARTY_TYPES = ("person", "org")
PROCEDURES = ("normal", "simple")
SOURCE_KINDS = ("inspection", "complaint", "referral", "monitoring", "other")
TESTING_KINDS = ("testing", "inspection", "quarantine", "appraisal")
HEARING_OUTCOMES = ("held", "withdrawn", "absent")
SERVICE_METHODS = ("direct", "lodged", "post", "electronic", "agent", "public_notice")
EXECUTION_METHODS = ("voluntary", "forced", "court")
REVOKED_BY = ("self", "reconsideration", "court", "superior")
CLOSE_REASONS = ("executed", "no_penalty", "revoked", "terminated", "transferred", "other")

# What may still be recorded on an archived case, and on a suspended one.
AFTER_ARCHIVE = frozenset({
    "case.decision_revoked", "case.decision_changed", "case.published", "case.publication_withdrawn",
    "case.major_penalty_filed", "case.transferred_to_police",
})
DURING_SUSPENSION = frozenset({"case.resumed", "case.closed", "case.extended", "case.transferred_to_police"})


def case_id_of(fact: Fact) -> str:
    return str(fact.payload.get("case_id", ""))


def label_of(fact: Fact) -> str:
    return EVENT_LABELS.get(fact.type, fact.type)


def sort_key(fact: Fact) -> tuple:
    return (fact.occurred_at, TYPE_ORDER.get(fact.type, len(TYPE_ORDER)), fact.event_id)


@dataclass(frozen=True)
class Rejected:
    """A fact that was not applied, with the reason (held: waiting; anomaly: contradicts the log)."""

    fact: Fact
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.fact.event_id, "type": self.fact.type,
                "occurred_at": self.fact.occurred_at.isoformat(), "reason": self.reason}


@dataclass(frozen=True)
class RecordEntry:
    """One line of the full-process record (全过程记录): who, when, what, text/audio-video."""

    event_id: str
    type: str
    label: str
    at: datetime
    officers: tuple[str, ...] = ()
    text: str = ""
    av_recorded: bool = False
    av_ref: str = ""


@dataclass(frozen=True)
class Act:
    """An enforcement act done by people (investigation, seizure, on-the-spot decision…)."""

    event_id: str
    at: datetime
    kind: str
    officers: tuple[str, ...]
    auxiliaries: tuple[str, ...] = ()
    av_recorded: bool = False


@dataclass(frozen=True)
class Notice:
    event_id: str
    at: datetime
    hearing_right: bool


@dataclass
class Hearing:
    requested_at: datetime
    notified_at: datetime | None = None
    scheduled_at: datetime | None = None
    held_at: datetime | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Review:
    at: datetime
    passed: bool


@dataclass(frozen=True)
class Extension:
    at: datetime
    days: int
    approved: bool


@dataclass
class Interval:
    """Time that does not count toward the decision limit (中止, 检验检测鉴定)."""

    start: datetime
    end: datetime | None = None
    kind: str = "suspension"


@dataclass(frozen=True)
class Payment:
    at: datetime
    amount: float
    late_fee: float = 0.0


@dataclass
class Decision:
    """A penalty decision (处罚决定) and what happened to it afterwards."""

    event_id: str
    at: datetime
    decision_no: str
    kinds: tuple[str, ...]
    fine_amount: float
    confiscation_amount: float
    tier: str | None
    item_code: str
    party: dict[str, Any]
    act_code: str
    procedure: str = "normal"
    on_spot: bool = False
    publication_exempt: bool = False
    hearing_waived: bool = False                 # the party waived the hearing in writing
    officers: tuple[str, ...] = ()
    served_at: datetime | None = None           # when the service act happened
    effective_served_at: datetime | None = None  # when service took effect (公告/留置送达 may differ)
    service_method: str | None = None
    payments: list[Payment] = field(default_factory=list)
    executed_at: datetime | None = None
    published_at: datetime | None = None
    withdrawn_at: datetime | None = None
    major_filed_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def penalized(self) -> bool:
        return bool(self.kinds)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def paid_amount(self) -> float:
        return sum(p.amount for p in self.payments)

    @property
    def party_type(self) -> str:
        return str(self.party.get("type", "person"))


@dataclass
class Case:
    """The case as folded from its facts. Build it with `fold`; never mutate it by hand."""

    case_id: str
    dept: str = ""
    stage: str | None = None
    procedure: str = "normal"
    case_no: str = ""
    item_code: str = ""
    party: dict[str, Any] = field(default_factory=dict)
    act_code: str = ""
    filed_at: datetime | None = None
    discovered_at: datetime | None = None
    filing_extension_approved: bool = False
    flags: set[str] = field(default_factory=set)
    measures: dict[str, float] = field(default_factory=dict)
    acts: list[Act] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    hearings: list[Hearing] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    discussions: list[datetime] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    suspensions: list[Interval] = field(default_factory=list)
    testings: list[Interval] = field(default_factory=list)
    handovers: list[datetime] = field(default_factory=list)
    closed_at: datetime | None = None
    close_reason: str | None = None
    archived_at: datetime | None = None
    record: list[RecordEntry] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    last_received_at: datetime | None = None      # the latest arrival of any of its facts (if recorded)
    held: list[Rejected] = field(default_factory=list)
    anomalies: list[Rejected] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.stage is not None

    @property
    def decision(self) -> Decision | None:
        """The current decision (the last one made; it may have been revoked)."""
        return self.decisions[-1] if self.decisions else None

    @property
    def deciding(self) -> bool:
        """Before any decision, or after the current one was revoked (重新作出)."""
        if self.stage in PRE_DECISION:
            return True
        return self.decision is not None and self.decision.revoked and self.stage != "archived"

    @property
    def suspended(self) -> bool:
        return any(s.end is None for s in self.suspensions)

    @property
    def open_hearing(self) -> Hearing | None:
        last = self.hearings[-1] if self.hearings else None
        return last if last and last.held_at is None else None

    @property
    def last_at(self) -> datetime | None:
        return self.record[-1].at if self.record else None

    def excluded_intervals(self) -> list[tuple[datetime, datetime | None]]:
        """Time not counted toward the decision limit: hearing, suspension, testing (Art. 60)."""
        spans: list[tuple[datetime, datetime | None]] = [(h.requested_at, h.held_at) for h in self.hearings]
        spans += [(s.start, s.end) for s in self.suspensions + self.testings]
        return spans

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly snapshot for the read model (datetimes as ISO 8601 strings)."""
        names, values = _field_getter(type(self))
        out = {name: _plain(v) for name, v in zip(names, values(self))}
        out["flags"] = sorted(self.flags)
        out["stage_label"] = STAGE_LABELS.get(self.stage or "", "")
        return out


_LEAVES = frozenset({str, int, float, bool, type(None)})
# per dataclass type: (field names, a getter of all their values in one call); None: not a dataclass
_FIELD_GETTERS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple]] | None] = {}


def _field_getter(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple]] | None:
    """(field names, f) for a dataclass type, looked up once per type, f(value) being the tuple of its
    field values in that order (one `attrgetter` call instead of a getattr per field); None: not a
    dataclass."""
    try:
        return _FIELD_GETTERS[cls]
    except KeyError:
        names = tuple(f.name for f in fields(cls)) if is_dataclass(cls) else None
        if names is None:
            getter = None
        elif len(names) == 1:  # (attrgetter of one name returns the value itself, not a tuple)
            one = attrgetter(names[0])
            getter = (names, lambda value: (one(value),))
        else:
            getter = (names, attrgetter(*names))
        _FIELD_GETTERS[cls] = getter
        return getter


def _plain(value: Any, nested: bool = False) -> Any:
    """`value` as plain JSON-friendly data: dataclasses as dicts of their fields, datetimes as ISO
    8601 strings, tuples and sets as lists. A `Rejected` at the top (a held or anomalous fact) is
    its `to_dict()`; inside another dataclass (`nested`) every dataclass is a dict of its fields —
    what `dataclasses.asdict` gave, without its deep copies (issue 14: it was most of the snapshot)."""
    cls = type(value)
    if cls in _LEAVES:
        return value
    if cls is datetime or isinstance(value, datetime):
        return value.isoformat()
    if not nested and isinstance(value, Rejected):
        return value.to_dict()
    getter = _field_getter(cls)
    if getter is not None:  # leaves inline: most values are strings, numbers, flags
        names, values = getter  # (and datetimes inline: a fifth of the values, `_plain` gives isoformat())
        return {name: v if type(v) in _LEAVES else v.isoformat() if type(v) is datetime else _plain(v, True)
                for name, v in zip(names, values(value))}
    if isinstance(value, dict):
        return {k: v if type(v) in _LEAVES else _plain(v, nested) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v if type(v) in _LEAVES else v.isoformat() if type(v) is datetime else _plain(v, nested)
                for v in value]
    return value


# -- guards: None = may apply; Blocked(hold=True) = prerequisite missing; hold=False = anomaly --

@dataclass(frozen=True)
class Blocked:
    hold: bool
    reason: str


def _hold(reason: str) -> Blocked:
    return Blocked(True, reason)


def _bad(reason: str) -> Blocked:
    return Blocked(False, reason)


NO_DECISION = "尚未作出处罚决定"


def _past(case: Case) -> str:
    """Why a pre-decision step is too late for this case."""
    return "案件已结案" if case.stage == "closed" else "案件已作出处罚决定"


def _before_decision(case: Case, what: str) -> Blocked | None:
    return None if case.deciding else _bad(f"{_past(case)}，不能再{what}")


def _needs_decision(case: Case) -> Blocked | Decision:
    if case.decision:
        return case.decision
    return _hold(NO_DECISION) if case.deciding else _bad("案件未作出处罚决定即已结案")


def _guard(case: Case, fact: Fact) -> Blocked | None:
    t = fact.type
    if t not in TYPE_ORDER:
        return _bad(f"未知的事件类型 {t}")
    if case.case_id and case_id_of(fact) != case.case_id:
        return _bad(f"事实所属案件（{case_id_of(fact)}）与本案（{case.case_id}）不一致")
    if not case.exists:
        return None if t in ("case.filed", "case.decided_on_spot") else _hold("案件尚未立案")
    if fact.dept != case.dept:
        return _bad(f"事实所属部门（{fact.dept}）与办案部门（{case.dept}）不一致")
    if t == "case.filed":
        return _bad("案件已立案，不能重复立案")
    if case.stage == "archived" and t not in AFTER_ARCHIVE:
        return _bad(f"案件已归档，不能再记录“{label_of(fact)}”")
    if t == "case.suspended" and case.suspended:
        return _bad("案件已处于中止状态")
    if case.suspended and t not in DURING_SUSPENSION:
        return _hold(f"案件已中止，“{label_of(fact)}”须待恢复后进行")
    return _GUARDS[t](case, fact)


def _g_investigated(case: Case, fact: Fact) -> Blocked | None:
    return _bad("案件已结案，不能再调查取证") if case.stage == "closed" else None


def _g_clock(what: str):
    def guard(case: Case, fact: Fact) -> Blocked | None:
        return _before_decision(case, what)
    return guard


def _g_interval_end(kind: str, missing: str):
    def guard(case: Case, fact: Fact) -> Blocked | None:
        spans = case.suspensions if kind == "suspension" else case.testings
        if any(s.end is None for s in spans):
            return None
        return _hold(missing) if case.deciding else _bad(f"{_past(case)}，且{missing}")
    return guard


def _g_notified(case: Case, fact: Fact) -> Blocked | None:
    if not case.deciding:
        return _bad(f"{_past(case)}，不能再告知")
    if not case.acts:
        return _hold("尚无调查取证记录")
    return _hold("当事人已申请听证，听证尚未举行") if case.open_hearing else None


def _g_hearing_requested(case: Case, fact: Fact) -> Blocked | None:
    if not case.deciding:
        return _bad(f"{_past(case)}，不能再申请听证")
    if case.open_hearing:
        return _bad("当事人已申请听证，不能重复申请")
    return None if case.notices else _hold("尚未告知当事人听证权利")


def _g_hearing_step(case: Case, fact: Fact) -> Blocked | None:
    if case.open_hearing:
        return None
    if case.hearings:
        return _bad("听证已经结束")
    return _hold("缺少听证申请") if case.deciding else _bad(f"{_past(case)}，不能再举行听证")


def _g_review(case: Case, fact: Fact) -> Blocked | None:
    if not case.deciding:
        return _bad(f"{_past(case)}，不能再记录“{label_of(fact)}”")
    return None if case.acts else _hold("尚无调查取证记录")


def _g_decided(case: Case, fact: Fact) -> Blocked | None:
    if not case.deciding:
        return _bad("案件已结案" if case.decision is None else f"案件已作出处罚决定（{case.decision.decision_no}），不能重复决定")
    simple = case.procedure == "simple" or fact.payload.get("procedure") == "simple"
    if not simple and not case.notices:
        return _hold("尚未告知当事人拟作出的处罚及陈述、申辩（听证）权利")
    if case.open_hearing:
        return _hold("当事人已申请听证，听证尚未举行")
    return None


def _g_on_spot(case: Case, fact: Fact) -> Blocked | None:
    if not case.deciding:
        return _bad(f"{_past(case)}，不能再当场处罚")
    return None if case.procedure == "simple" else _bad("普通程序案件不能适用当场处罚")


def _g_served(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    if d.revoked:
        return _bad("处罚决定已撤销，不能再送达")
    return _bad("处罚决定书已送达") if d.served_at else None


def _g_paid(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    if d.revoked:
        return _bad("处罚决定已撤销，不应再缴纳罚款")
    if d.fine_amount <= 0:
        return _bad("处罚决定没有罚款")
    return None if d.served_at else _hold("处罚决定书尚未送达")


def _g_executed(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    if d.revoked or d.executed_at or case.stage == "closed":
        return _bad("处罚决定已撤销、已执行或案件已结案")
    return None if d.served_at else _hold("处罚决定书尚未送达")


def _g_published(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    if d.revoked:
        return _bad("处罚决定已撤销，不应公示")
    return _bad("处罚决定已公示") if d.published_at else None


def _g_withdrawn(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    if d.withdrawn_at:
        return _bad("公示信息已撤下")
    return None if d.published_at else _hold("处罚决定尚未公示")


def _g_decision_changed(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    if isinstance(d, Blocked):
        return d
    return _bad("处罚决定已撤销") if d.revoked else None


def _g_major_filed(case: Case, fact: Fact) -> Blocked | None:
    d = _needs_decision(case)
    return d if isinstance(d, Blocked) else None


def _g_closed(case: Case, fact: Fact) -> Blocked | None:
    if case.stage == "closed":
        return _bad("案件已结案")
    d = case.decision
    if case.deciding or d is None:
        return None
    return None if d.served_at else _hold("处罚决定书尚未送达")


def _g_archived(case: Case, fact: Fact) -> Blocked | None:
    return None if case.stage == "closed" else _hold("案件尚未结案")


def _g_any(case: Case, fact: Fact) -> Blocked | None:
    return None


_GUARDS = {
    "case.investigated": _g_investigated,
    "case.testing_started": _g_clock("开始检验检测鉴定"),
    "case.testing_completed": _g_interval_end("testing", "没有进行中的检验检测鉴定"),
    "case.extended": _g_clock("延长办案期限"),
    "case.suspended": _g_clock("中止案件"),
    "case.resumed": _g_interval_end("suspension", "案件未中止"),
    "case.notified": _g_notified,
    "case.hearing_requested": _g_hearing_requested,
    "case.hearing_notified": _g_hearing_step,
    "case.hearing_held": _g_hearing_step,
    "case.legal_reviewed": _g_review,
    "case.collectively_discussed": _g_review,
    "case.transferred_to_police": _g_any,
    "case.decided": _g_decided,
    "case.decided_on_spot": _g_on_spot,
    "case.served": _g_served,
    "case.paid": _g_paid,
    "case.published": _g_published,
    "case.major_penalty_filed": _g_major_filed,
    "case.executed": _g_executed,
    "case.decision_changed": _g_decision_changed,
    "case.decision_revoked": _g_decision_changed,
    "case.publication_withdrawn": _g_withdrawn,
    "case.closed": _g_closed,
    "case.archived": _g_archived,
}


# -- appliers: mutate the case being folded --

def _strs(value: Any) -> tuple[str, ...]:
    return tuple(map(str, value)) if isinstance(value, (list, tuple)) else ()


def _money(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _take_case_data(case: Case, p: Mapping[str, Any]) -> None:
    for flag in ("complex", "major_public_interest", "legal_review_required"):
        if p.get(flag):
            case.flags.add(flag)
    for name, value in (p.get("measures") or {}).items():
        case.measures[str(name)] = max(_money(value), case.measures.get(str(name), 0.0))
    if p.get("item_code"):
        case.item_code = str(p["item_code"])
    if p.get("party"):
        case.party = dict(p["party"])
    if p.get("act_code"):
        case.act_code = str(p["act_code"])
    if p.get("procedure") == "simple":
        case.procedure = "simple"


def _new_decision(case: Case, fact: Fact, on_spot: bool) -> Decision:
    p = fact.payload
    return Decision(
        event_id=fact.event_id, at=fact.occurred_at, decision_no=str(p.get("decision_no") or ""),
        kinds=_strs(p.get("kinds")), fine_amount=_money(p.get("fine_amount")),
        confiscation_amount=_money(p.get("confiscation_amount")), tier=p.get("tier"),
        item_code=case.item_code, party=dict(case.party), act_code=case.act_code,
        procedure="simple" if on_spot else case.procedure, on_spot=on_spot,
        publication_exempt=bool(p.get("publication_exempt")), hearing_waived=bool(p.get("hearing_waived")),
        officers=_strs(p.get("officers")),
    )


def _apply(case: Case, fact: Fact) -> None:
    p, at, t = fact.payload, fact.occurred_at, fact.type
    officers, stage = _strs(p.get("officers")), None
    if t == "case.filed":
        case.dept, case.case_no, stage = fact.dept, str(p.get("case_no") or ""), "filed"
        case.filed_at, case.discovered_at = at, parse_time(p.get("discovered_at"))
        case.filing_extension_approved = bool(p.get("filing_extension_approved"))
        _take_case_data(case, p)
    elif t == "case.investigated":
        case.acts.append(Act(fact.event_id, at, str(p.get("act_kind") or "evidence"), officers,
                             _strs(p.get("auxiliaries")), bool(p.get("av_recorded"))))
        _take_case_data(case, p)
        stage = "investigating" if case.stage == "filed" else None
    elif t == "case.testing_started":
        case.testings.append(Interval(at, None, str(p.get("kind") or "testing")))
    elif t == "case.testing_completed":
        next(s for s in case.testings if s.end is None).end = at
    elif t == "case.extended":
        case.extensions.append(Extension(at, int(p.get("days") or 0), bool(p.get("approved"))))
    elif t == "case.suspended":
        case.suspensions.append(Interval(at))
    elif t == "case.resumed":
        next(s for s in case.suspensions if s.end is None).end = at
    elif t == "case.notified":
        case.notices.append(Notice(fact.event_id, at, bool(p.get("hearing_right"))))
        stage = "notified"
    elif t == "case.hearing_requested":
        case.hearings.append(Hearing(at))
        stage = "hearing_requested"
    elif t == "case.hearing_notified":
        hearing = case.hearings[-1]
        hearing.notified_at, hearing.scheduled_at = at, parse_time(p.get("hearing_at"))
    elif t == "case.hearing_held":
        hearing = case.hearings[-1]
        hearing.held_at, hearing.outcome = at, str(p.get("outcome") or "held")
        stage = "hearing_held"
    elif t == "case.legal_reviewed":
        case.reviews.append(Review(at, bool(p.get("passed"))))
        stage = "legal_review"
    elif t == "case.collectively_discussed":
        case.discussions.append(at)
        stage = "collective_discussion"
    elif t == "case.transferred_to_police":
        case.handovers.append(at)
    elif t in ("case.decided", "case.decided_on_spot"):
        on_spot = t == "case.decided_on_spot"
        if not case.exists:
            case.dept = fact.dept
        if on_spot:
            case.procedure = "simple"
            case.acts.append(Act(fact.event_id, at, "on_site", officers, _strs(p.get("auxiliaries")),
                                 bool(p.get("av_recorded"))))
        _take_case_data(case, p)
        decision = _new_decision(case, fact, on_spot)
        if on_spot:  # 当场交付 (Art. 52), possibly 当场收缴 (Art. 68)
            decision.served_at = decision.effective_served_at = at
            decision.service_method = "direct"
            if p.get("paid_on_spot") and decision.fine_amount > 0:
                decision.payments.append(Payment(at, decision.fine_amount))
        case.decisions.append(decision)
        case.closed_at = case.close_reason = None
        stage = "served" if on_spot else "decided"
    elif t == "case.served":
        d = case.decisions[-1]
        d.served_at, d.service_method = at, str(p.get("method") or "direct")
        d.effective_served_at = max(parse_time(p.get("served_at")) or at, at)
        stage = "served"
    elif t == "case.paid":
        case.decisions[-1].payments.append(Payment(at, _money(p.get("amount")), _money(p.get("late_fee"))))
    elif t == "case.published":
        case.decisions[-1].published_at = at
    elif t == "case.major_penalty_filed":
        d = case.decisions[-1]
        d.major_filed_at = d.major_filed_at or at
    elif t == "case.executed":
        case.decisions[-1].executed_at = at
        stage = "executed"
    elif t == "case.decision_changed":
        d = case.decisions[-1]
        change = {k: p[k] for k in ("kinds", "fine_amount", "confiscation_amount", "tier") if k in p}
        d.kinds = _strs(change["kinds"]) if "kinds" in change else d.kinds
        d.fine_amount = _money(change["fine_amount"]) if "fine_amount" in change else d.fine_amount
        d.confiscation_amount = (_money(change["confiscation_amount"]) if "confiscation_amount" in change
                                 else d.confiscation_amount)
        d.tier = change.get("tier", d.tier)
        d.changes.append({"at": at, "by": p.get("by"), **change})
    elif t == "case.decision_revoked":
        d = case.decisions[-1]
        d.revoked_at, d.revoked_by = at, p.get("by")
    elif t == "case.publication_withdrawn":
        case.decisions[-1].withdrawn_at = at
    elif t == "case.closed":  # closing a suspended case terminates it (终止)
        case.closed_at, case.close_reason, stage = at, p.get("reason"), "closed"
        for span in case.suspensions + case.testings:
            span.end = span.end or at
    elif t == "case.archived":
        case.archived_at, stage = at, "archived"
    if stage:
        case.stage = stage
    case.applied.append(fact.event_id)
    case.record.append(RecordEntry(
        fact.event_id, t, label_of(fact), at, officers, str(p.get("text") or p.get("summary") or ""),
        bool(p.get("av_recorded")), str(p.get("av_ref") or ""),
    ))


def fold(facts: Iterable[Fact], case_id: str | None = None) -> Case:
    """Rebuild the case from its facts, in any order; see the module docstring."""
    ordered = sorted(facts, key=sort_key)
    case = Case(case_id=case_id if case_id is not None else (case_id_of(ordered[0]) if ordered else ""))
    arrivals = [f.received_at for f in ordered if f.received_at is not None]
    case.last_received_at = max(arrivals) if arrivals else None
    seen: set[str] = set()
    waiting: list[Rejected] = []
    for fact in ordered:
        if fact.event_id in seen:
            case.duplicates.append(fact.event_id)
            continue
        seen.add(fact.event_id)
        blocked = _guard(case, fact)
        if blocked is None:
            _apply(case, fact)
        elif blocked.hold:
            waiting.append(Rejected(fact, blocked.reason))
        else:
            case.anomalies.append(Rejected(fact, blocked.reason))
    for item in waiting:
        # A prerequisite that exists now but happened later than the fact is a contradiction.
        again = _guard(case, item.fact)
        if again is not None and again.hold:
            case.held.append(Rejected(item.fact, again.reason))
        else:
            case.anomalies.append(Rejected(
                item.fact, f"“{label_of(item.fact)}”的发生时间早于其前置环节（{item.reason}），顺序不合法"))
    return case


def admit(case: Case, fact: Fact) -> None:
    """Refuse (NotOwnerError, code 'not_owner') a fact about a case another department handles.

    The department that filed the case (or decided it on the spot) owns it (数据归属); only it
    reports the case's facts. A foreign fact that arrived before the filing and was held is kept
    as an anomaly once the filing shows another owner (fold), so it never takes effect.
    """
    if case.exists and fact.dept != case.dept:
        raise NotOwnerError(f"案件 {case.case_id} 由 {case.dept} 办理，{fact.dept} 无权报告其“{label_of(fact)}”",
                            owner=case.dept)


def invariant_violations(case: Case) -> list[str]:
    """Internal consistency of a folded case; an empty list means the state is legal."""
    out: list[str] = []
    if case.stage is not None and case.stage not in STAGES:
        out.append(f"未知的案件阶段 {case.stage}")
    if case.stage is None and case.applied:
        out.append("未立案的案件不应有已适用的事实")
    times = [r.at for r in case.record]
    if times != sorted(times):
        out.append("全过程记录的时间顺序错乱")
    if case.stage in ("decided", "served", "executed") and not case.decisions:
        out.append("已进入决定后阶段但没有处罚决定")
    for d in case.decisions:
        if case.filed_at and d.at < case.filed_at:
            out.append(f"决定 {d.decision_no} 早于立案")
        for name in ("served_at", "executed_at", "published_at", "revoked_at", "major_filed_at"):
            when = getattr(d, name)
            if when and when < d.at:
                out.append(f"决定 {d.decision_no} 的 {name} 早于决定时间")
        if d.executed_at and not d.served_at:
            out.append(f"决定 {d.decision_no} 未送达即执行")
        if d.withdrawn_at and (not d.published_at or d.withdrawn_at < d.published_at):
            out.append(f"决定 {d.decision_no} 未公示即撤下")
        if any(p.at < (d.served_at or p.at) for p in d.payments) or (d.payments and not d.served_at):
            out.append(f"决定 {d.decision_no} 未送达即缴款")
    if sum(s.end is None for s in case.suspensions) > 1:
        out.append("同时存在多个未恢复的中止")
    if any(s.end and s.end < s.start for s in case.suspensions + case.testings):
        out.append("中止或检验检测区间的结束早于开始")
    if case.suspended and case.stage not in PRE_DECISION and not case.deciding:
        out.append("已作出决定的案件处于中止状态")
    if any(h.held_at and h.held_at < h.requested_at for h in case.hearings):
        out.append("听证早于听证申请")
    if case.archived_at and (not case.closed_at or case.archived_at < case.closed_at):
        out.append("未结案即归档")
    ids = case.applied + [r.fact.event_id for r in case.held + case.anomalies]
    if len(ids) != len(set(ids)):
        out.append("同一事实被重复处理")
    return out


# -- strict commands (网上办案): same guards, but an illegal step raises --

def _choice(value: Any, allowed: Sequence[str], name: str, label: str) -> None:
    if value not in allowed:
        raise DomainError(f"{label}取值不合法：{value}", code="invalid_value", field=name)


def _amount(value: Any, name: str, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise DomainError(f"{label}必须是非负数", code="invalid_value", field=name)


def _party(party: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if party is None:
        return None
    _choice(party.get("type"), PARTY_TYPES, "party.type", "当事人类型")
    if not party.get("id") or not party.get("name"):
        raise DomainError("当事人须有证件号码（统一社会信用代码/身份证号）和名称", code="invalid_value", field="party")
    return {"type": party["type"], "id": str(party["id"]), "name": str(party["name"])}


def _issue(case: Case, type_: str, at: datetime, event_id: str, **payload: Any) -> Fact:
    body: dict[str, Any] = {"case_id": case.case_id}
    for key, value in payload.items():
        if value is None:
            continue
        body[key] = value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
    fact = Fact(event_id, type_, at, case.dept, body)
    last = case.record[-1] if case.record else None
    # the new fact must sort after the log, or the next fold would replay it in another place
    if last and (at, TYPE_ORDER[type_]) < (last.at, TYPE_ORDER[last.type]):
        raise IllegalTransitionError(f"操作时间须晚于案件最近一条记录（{last.at.isoformat()}）", field="at")
    blocked = _guard(case, fact)
    if blocked is not None:
        raise IllegalTransitionError(f"不能{label_of(fact)}：{blocked.reason}")
    return fact


def _new(case: Case, dept: str) -> Case:
    """The case a creating command works on: the folded one if it exists, else a blank for `dept`."""
    return case if case.exists else replace(case, dept=dept)


def file_case(case: Case, *, dept: str, at: datetime, event_id: str, item_code: str,
              party: Mapping[str, Any] | None = None, procedure: str = "normal", case_no: str | None = None,
              source_kind: str | None = None, discovered_at: datetime | None = None, summary: str | None = None,
              complex: bool = False, major_public_interest: bool = False,
              filing_extension_approved: bool = False) -> Fact:
    """立案; pass the folded case, or `Case(case_id)` for a new one."""
    _choice(procedure, PROCEDURES, "procedure", "程序类型")
    if source_kind is not None:
        _choice(source_kind, SOURCE_KINDS, "source_kind", "案件来源")
    return _issue(_new(case, dept), "case.filed", at, event_id, item_code=item_code, party=_party(party),
                  procedure=procedure, case_no=case_no, source_kind=source_kind, discovered_at=discovered_at,
                  summary=summary, complex=complex or None, major_public_interest=major_public_interest or None,
                  filing_extension_approved=filing_extension_approved or None)


def record_act(case: Case, *, at: datetime, event_id: str, act_kind: str, officers: Sequence[str],
               auxiliaries: Sequence[str] = (), av_recorded: bool = False, av_ref: str | None = None,
               text: str | None = None, measures: Mapping[str, float] | None = None) -> Fact:
    """Record an investigation/enforcement act (调查取证、查封扣押…)."""
    _choice(act_kind, ACT_KINDS, "act_kind", "执法行为类型")
    for name, value in (measures or {}).items():
        _amount(value, f"measures.{name}", "涉案数额")
    return _issue(case, "case.investigated", at, event_id, act_kind=act_kind, officers=tuple(officers),
                  auxiliaries=tuple(auxiliaries), av_recorded=av_recorded, av_ref=av_ref, text=text,
                  measures=dict(measures) if measures else None)


def start_testing(case: Case, *, at: datetime, event_id: str, kind: str = "testing") -> Fact:
    """检验、检测、检疫、鉴定开始 (time excluded from the decision limit)."""
    _choice(kind, TESTING_KINDS, "kind", "检验检测类型")
    return _issue(case, "case.testing_started", at, event_id, kind=kind)


def complete_testing(case: Case, *, at: datetime, event_id: str, report_ref: str | None = None) -> Fact:
    return _issue(case, "case.testing_completed", at, event_id, report_ref=report_ref)


def extend(case: Case, *, at: datetime, event_id: str, days: int, approved: bool,
           approver: str | None = None, reason: str | None = None) -> Fact:
    """延长办案期限 (counts only when approved)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise DomainError("延长天数必须是正整数", code="invalid_value", field="days")
    return _issue(case, "case.extended", at, event_id, days=days, approved=approved, approver=approver, reason=reason)


def suspend(case: Case, *, at: datetime, event_id: str, reason: str | None = None) -> Fact:
    return _issue(case, "case.suspended", at, event_id, reason=reason)


def resume(case: Case, *, at: datetime, event_id: str) -> Fact:
    return _issue(case, "case.resumed", at, event_id)


def notify(case: Case, *, at: datetime, event_id: str, hearing_right: bool, proposed_kinds: Sequence[str] = (),
           proposed_fine: float | None = None, officers: Sequence[str] = ()) -> Fact:
    """告知拟处罚及陈述、申辩（听证）权利."""
    for kind in proposed_kinds:
        _choice(kind, PENALTY_KINDS, "proposed_kinds", "处罚种类")
    return _issue(case, "case.notified", at, event_id, hearing_right=hearing_right,
                  proposed_kinds=tuple(proposed_kinds), proposed_fine=proposed_fine, officers=tuple(officers))


def request_hearing(case: Case, *, at: datetime, event_id: str) -> Fact:
    return _issue(case, "case.hearing_requested", at, event_id)


def notify_hearing(case: Case, *, at: datetime, event_id: str, hearing_at: datetime, place: str | None = None) -> Fact:
    return _issue(case, "case.hearing_notified", at, event_id, hearing_at=hearing_at, place=place)


def hold_hearing(case: Case, *, at: datetime, event_id: str, outcome: str = "held",
                 officers: Sequence[str] = (), av_recorded: bool = False) -> Fact:
    _choice(outcome, HEARING_OUTCOMES, "outcome", "听证结果")
    return _issue(case, "case.hearing_held", at, event_id, outcome=outcome, officers=tuple(officers),
                  av_recorded=av_recorded)


def review(case: Case, *, at: datetime, event_id: str, passed: bool, reviewer: str | None = None,
           opinion: str | None = None) -> Fact:
    """法制审核."""
    return _issue(case, "case.legal_reviewed", at, event_id, passed=passed, reviewer=reviewer, opinion=opinion)


def discuss(case: Case, *, at: datetime, event_id: str, participants: Sequence[str] = (),
            conclusion: str | None = None) -> Fact:
    """负责人集体讨论."""
    return _issue(case, "case.collectively_discussed", at, event_id, participants=tuple(participants),
                  conclusion=conclusion)


def _decision_payload(decision_no: str, kinds: Sequence[str], fine_amount: float, confiscation_amount: float,
                      party: Mapping[str, Any] | None, act_code: str | None) -> dict[str, Any]:
    for kind in kinds:
        _choice(kind, PENALTY_KINDS, "kinds", "处罚种类")
    _amount(fine_amount, "fine_amount", "罚款金额")
    _amount(confiscation_amount, "confiscation_amount", "没收金额")
    if fine_amount > 0 and "fine" not in kinds:
        raise DomainError("有罚款金额的决定须包含罚款种类", code="invalid_value", field="kinds")
    if not decision_no:
        raise DomainError("缺少决定书文号", code="invalid_value", field="decision_no")
    return {"decision_no": decision_no, "kinds": tuple(kinds), "fine_amount": fine_amount,
            "confiscation_amount": confiscation_amount or None, "party": _party(party), "act_code": act_code}


def decide(case: Case, *, at: datetime, event_id: str, decision_no: str, kinds: Sequence[str],
           party: Mapping[str, Any], act_code: str, fine_amount: float = 0, confiscation_amount: float = 0,
           tier: str | None = None, item_code: str | None = None, procedure: str | None = None,
           officers: Sequence[str] = (), measures: Mapping[str, float] | None = None,
           publication_exempt: bool = False, hearing_waived: bool = False, text: str | None = None) -> Fact:
    """作出行政处罚决定 (empty `kinds` = 不予行政处罚)."""
    if procedure is not None:
        _choice(procedure, PROCEDURES, "procedure", "程序类型")
    body = _decision_payload(decision_no, kinds, fine_amount, confiscation_amount, party, act_code)
    return _issue(case, "case.decided", at, event_id, **body, tier=tier, item_code=item_code or case.item_code or None,
                  procedure=procedure, officers=tuple(officers), measures=dict(measures) if measures else None,
                  publication_exempt=publication_exempt or None, hearing_waived=hearing_waived or None, text=text)


def decide_on_spot(case: Case, *, dept: str, at: datetime, event_id: str, decision_no: str, kinds: Sequence[str],
                   party: Mapping[str, Any], act_code: str, item_code: str, officers: Sequence[str],
                   fine_amount: float = 0, av_recorded: bool = False, paid_on_spot: bool = False,
                   tier: str | None = None) -> Fact:
    """当场处罚 (Art. 51); pass `Case(case_id)` when no case was filed. `tier`: the discretion tier applied."""
    body = _decision_payload(decision_no, kinds, fine_amount, 0, party, act_code)
    return _issue(_new(case, dept), "case.decided_on_spot", at, event_id, **body, item_code=item_code,
                  officers=tuple(officers), av_recorded=av_recorded, paid_on_spot=paid_on_spot or None, tier=tier)


def serve(case: Case, *, at: datetime, event_id: str, method: str, served_at: datetime | None = None) -> Fact:
    """送达 (`served_at`: when service takes effect, e.g. 公告送达)."""
    _choice(method, SERVICE_METHODS, "method", "送达方式")
    return _issue(case, "case.served", at, event_id, method=method, served_at=served_at)


def record_payment(case: Case, *, at: datetime, event_id: str, amount: float, late_fee: float = 0,
                   receipt_no: str | None = None) -> Fact:
    _amount(amount, "amount", "缴款金额")
    _amount(late_fee, "late_fee", "加处罚款")
    return _issue(case, "case.paid", at, event_id, amount=amount, late_fee=late_fee or None, receipt_no=receipt_no)


def execute(case: Case, *, at: datetime, event_id: str, method: str = "voluntary") -> Fact:
    _choice(method, EXECUTION_METHODS, "method", "执行方式")
    return _issue(case, "case.executed", at, event_id, method=method)


def close(case: Case, *, at: datetime, event_id: str, reason: str) -> Fact:
    _choice(reason, CLOSE_REASONS, "reason", "结案原因")
    return _issue(case, "case.closed", at, event_id, reason=reason)


def archive(case: Case, *, at: datetime, event_id: str, archive_no: str | None = None) -> Fact:
    return _issue(case, "case.archived", at, event_id, archive_no=archive_no)


def publish(case: Case, *, at: datetime, event_id: str, url: str | None = None) -> Fact:
    return _issue(case, "case.published", at, event_id, url=url)


def withdraw_publication(case: Case, *, at: datetime, event_id: str, reason: str | None = None) -> Fact:
    return _issue(case, "case.publication_withdrawn", at, event_id, reason=reason)


def revoke_decision(case: Case, *, at: datetime, event_id: str, by: str, reason: str | None = None) -> Fact:
    """撤销处罚决定."""
    _choice(by, REVOKED_BY, "by", "撤销机关")
    return _issue(case, "case.decision_revoked", at, event_id, by=by, reason=reason)


def change_decision(case: Case, *, at: datetime, event_id: str, by: str, reason: str | None = None,
                    kinds: Sequence[str] | None = None, fine_amount: float | None = None,
                    confiscation_amount: float | None = None, tier: str | None = None) -> Fact:
    """变更处罚决定 (only the given fields change)."""
    _choice(by, REVOKED_BY, "by", "变更机关")
    for kind in kinds or ():
        _choice(kind, PENALTY_KINDS, "kinds", "处罚种类")
    for name, value in (("fine_amount", fine_amount), ("confiscation_amount", confiscation_amount)):
        if value is not None:
            _amount(value, name, "金额")
    return _issue(case, "case.decision_changed", at, event_id, by=by, reason=reason,
                  kinds=list(kinds) if kinds is not None else None, fine_amount=fine_amount,
                  confiscation_amount=confiscation_amount, tier=tier)


def file_major_penalty(case: Case, *, at: datetime, event_id: str, filing_no: str | None = None) -> Fact:
    """重大行政处罚决定报司法局备案."""
    return _issue(case, "case.major_penalty_filed", at, event_id, filing_no=filing_no)


def transfer_to_police(case: Case, *, at: datetime, event_id: str, police_unit: str | None = None,
                       suspected_crime: str | None = None, handover_id: str | None = None) -> Fact:
    """移送公安机关 (涉嫌犯罪)."""
    return _issue(case, "case.transferred_to_police", at, event_id, police_unit=police_unit,
                  suspected_crime=suspected_crime, handover_id=handover_id)
